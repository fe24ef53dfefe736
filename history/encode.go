package history

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// appendJSON appends e's JSON exactly as encoding/json encodes an Event (same field order,
// omitempty rules and string escaping, HTML characters unescaped as the Writer sets), without
// reflection: the load generator writes two events per record sent, and reflection made the
// history cost more than 10% of throughput.
func (e *Event) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, e.Index, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, e.Time, 10)
	b = append(b, `,"p":`...)
	b = strconv.AppendInt(b, int64(e.Process), 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(e.Type))
	b = append(b, `,"f":`...)
	b = appendString(b, string(e.F))
	if e.Topic != "" {
		b = append(b, `,"topic":`...)
		b = appendString(b, e.Topic)
	}
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(e.Partition), 10)
	if e.Key != "" {
		b = append(b, `,"key":`...)
		b = appendString(b, e.Key)
	}
	if e.Value != "" {
		b = append(b, `,"value":`...)
		b = appendString(b, e.Value)
	}
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, e.Offset, 10)
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	if len(e.Records) > 0 {
		b = append(b, `,"records":[`...)
		for i, r := range e.Records {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(append(b, '['), int64(r.Partition), 10)
			b = strconv.AppendInt(append(b, ','), r.Offset, 10)
			b = append(appendString(append(b, ','), r.Value), ']')
		}
		b = append(b, ']')
	}
	if len(e.Offsets) > 0 {
		b = append(b, `,"offsets":[`...)
		for i, o := range e.Offsets {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(append(b, '['), int64(o.Partition), 10)
			b = append(strconv.AppendInt(append(b, ','), o.Offset, 10), ']')
		}
		b = append(b, ']')
	}
	if e.TxnID != 0 {
		b = append(b, `,"txn_id":`...)
		b = strconv.AppendInt(b, e.TxnID, 10)
	}
	var err error
	if e.Txn != nil {
		if b, err = appendValue(append(b, `,"txn":`...), e.Txn); err != nil {
			return nil, err
		}
	}
	if e.Fault != nil {
		if b, err = appendValue(append(b, `,"fault":`...), e.Fault); err != nil {
			return nil, err
		}
	}
	if e.ISR != nil {
		if b, err = appendValue(append(b, `,"isr":`...), e.ISR); err != nil {
			return nil, err
		}
	}
	if e.Run != nil {
		if b, err = appendValue(append(b, `,"run":`...), e.Run); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendValue encodes the rare nested structs with encoding/json, HTML unescaped.
func appendValue(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping off: control characters
// escaped (\b \f \n \r \t by name), invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029
// escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
