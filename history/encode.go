package history

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// An event's line is its head (index and time: odometer.appendHead), its prefix (appendPrefix)
// and the rest (appendRest): byte-for-byte what encoding/json (with HTML escaping off) writes
// for Event, field order and omitempty rules included.

// appendPrefix appends the start of e's tail: process, type, function and topic.
func appendPrefix(b []byte, e *Event) []byte {
	b = append(b, `,"p":`...)
	b = appendInt(b, int64(e.Process))
	b = append(b, `,"type":`...)
	b = appendString(b, string(e.Type))
	b = append(b, `,"f":`...)
	b = appendString(b, string(e.F))
	if e.Topic != "" {
		b = append(b, `,"topic":`...)
		b = appendString(b, e.Topic)
	}
	return b
}

// prefixCache holds the last prefix (appendPrefix) encoded through it: a lane's events mostly
// share theirs (one producer's sends to one topic), so it is encoded once, not per event.
type prefixCache struct {
	process int
	typ     Type
	f       F
	topic   string
	enc     []byte
}

// append appends e's prefix, from the cache when e shares it.
func (c *prefixCache) append(b []byte, e *Event) []byte {
	if c.enc == nil || e.Process != c.process || e.Type != c.typ || e.F != c.f || e.Topic != c.topic {
		if e.Topic != c.topic {
			c.topic = strings.Clone(e.Topic) // the caller may reuse the string's memory
		}
		c.process, c.typ, c.f = e.Process, e.Type, e.F
		c.enc = appendPrefix(c.enc[:0], e)
	}
	return append(b, c.enc...)
}

// appendRest appends the rest of e's tail after its prefix, newline included.
func appendRest(b []byte, e *Event) ([]byte, error) {
	b = append(b, `,"partition":`...)
	b = appendInt(b, int64(e.Partition))
	if e.Key != "" {
		b = append(b, `,"key":`...)
		b = appendString(b, e.Key)
	}
	if e.Value != "" {
		b = append(b, `,"value":`...)
		b = appendString(b, e.Value)
	}
	b = append(b, `,"offset":`...)
	b = appendInt(b, e.Offset)
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
			b = r.appendJSON(b)
		}
		b = append(b, ']')
	}
	if len(e.Offsets) > 0 {
		b = append(b, `,"offsets":[`...)
		for i, p := range e.Offsets {
			if i > 0 {
				b = append(b, ',')
			}
			b = p.appendJSON(b)
		}
		b = append(b, ']')
	}
	if e.TxnID != 0 {
		b = append(b, `,"txn_id":`...)
		b = strconv.AppendInt(b, e.TxnID, 10)
	}
	var err error
	if e.Txn != nil {
		b, err = appendNested(b, `,"txn":`, e.Txn)
	}
	if err == nil && e.Group != nil {
		b, err = appendNested(b, `,"group":`, e.Group)
	}
	if err == nil && e.Fault != nil {
		b, err = appendNested(b, `,"fault":`, e.Fault)
	}
	if err == nil && e.ISR != nil {
		b, err = appendNested(b, `,"isr":`, e.ISR)
	}
	if err == nil && e.Run != nil {
		b, err = appendNested(b, `,"run":`, e.Run)
	}
	return append(b, '}', '\n'), err
}

func appendNested(b []byte, name string, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b, err
	}
	b = append(b, name...)
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...), nil
}

func (r Record) appendJSON(b []byte) []byte {
	b = append(b, '[')
	b = appendInt(b, int64(r.Partition))
	b = append(b, ',')
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, ',')
	b = appendString(b, r.Value)
	return append(b, ']')
}

func (p PartitionOffset) appendJSON(b []byte) []byte {
	b = append(b, '[')
	b = appendInt(b, int64(p.Partition))
	b = append(b, ',')
	b = strconv.AppendInt(b, p.Offset, 10)
	return append(b, ']')
}

// appendInt appends v in decimal, the small values a history is full of (partitions,
// processes, the -1 of unknown offsets) without strconv's general path.
func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0 && v < 10:
		return append(b, byte('0'+v))
	case v == -1:
		return append(b, '-', '1')
	}
	return strconv.AppendInt(b, v, 10)
}

const hexDigits = "0123456789abcdef"

// plainByte marks the bytes a JSON string holds as they are: printable ASCII other than '"'
// and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string the way encoding/json does with HTML escaping off:
// control characters escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	i := plainPrefix(s)
	for i < len(s) && plainByte[s[i]] {
		i++
	}
	b = append(b, '"')
	if i == len(s) { // the common case: nothing to escape
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainByte[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
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
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainPrefix returns how many leading bytes of s, in whole 8-byte words, need no escaping
// (printable ASCII other than '"' and '\\'), testing a word at a time: most history strings
// (topics, keys, values, names) are plain, and this is the encoder's hottest loop.
func plainPrefix(s string) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		quote, backslash := w^(ones*'"'), w^(ones*'\\')
		special := (w - ones*0x20) | (quote-ones)&^quote | (backslash-ones)&^backslash
		if (special&^w|w)&highs != 0 {
			break
		}
	}
	return i
}
