package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// decoder is a hand-written parser for exactly the Event schema: one JSON object per line.
// Known fields are decoded directly; nested objects (txn, fault, isr, run) are rare and go
// through encoding/json; unknown fields of any shape are skipped. It never panics on malformed
// input and allocates only for strings it keeps.
type decoder struct {
	b      []byte
	pos    int
	intern map[string]string // small cache for topics, keys and errors
	topic  string            // the last topic decoded
	// alias makes the fast path's strings point into the line instead of copying it; only for
	// lines in buffers that are never written again.
	alias bool
}

// maxDepth bounds the nesting of skipped values.
const maxDepth = 512

// internMax bounds the decoder's string cache.
const internMax = 4096

var errSyntax = errors.New("invalid JSON")

func (d *decoder) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errSyntax, what, d.pos)
}

func (d *decoder) ws() { d.pos = skipWS(d.b, d.pos) }

// skipWS returns the index of the first non-space byte of b at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func (d *decoder) peek() byte {
	i := skipWS(d.b, d.pos)
	d.pos = i
	if i >= len(d.b) {
		return 0
	}
	return d.b[i]
}

func (d *decoder) expect(c byte) error {
	if d.peek() != c {
		return d.fail("expected " + strconv.QuoteRune(rune(c)))
	}
	d.pos++
	return nil
}

// decode parses line into e, which must be zeroed by the caller. Lines in the Writer's own
// layout take a fast path; anything else goes through the general parser.
func (d *decoder) decode(line []byte, e *Event) error {
	if d.decodeFast(line, e) {
		return nil
	}
	*e = Event{}
	return d.decodeGeneral(line, e)
}

// decodeGeneral parses line into e, which must be zeroed, accepting any valid JSON object.
func (d *decoder) decodeGeneral(line []byte, e *Event) error {
	d.b, d.pos = line, 0
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.pos++
		return d.end()
	}
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if d.isNull() {
			// null leaves a field untouched, as encoding/json does.
		} else if err := d.field(key, e); err != nil {
			return err
		}
		if done, err := d.next('}'); done || err != nil {
			if err != nil {
				return err
			}
			return d.end()
		}
	}
}

func (d *decoder) end() error {
	d.ws()
	if d.pos != len(d.b) {
		return d.fail("trailing data")
	}
	return nil
}

func (d *decoder) isNull() bool {
	if d.peek() == 'n' && len(d.b)-d.pos >= 4 && string(d.b[d.pos:d.pos+4]) == "null" {
		d.pos += 4
		return true
	}
	return false
}

func (d *decoder) field(key []byte, e *Event) error {
	var err error
	switch string(key) {
	case "i":
		e.Index, err = d.int(64)
	case "t":
		e.Time, err = d.int(64)
	case "p":
		var v int64
		v, err = d.int(strconv.IntSize)
		e.Process = int(v)
	case "type":
		var s []byte
		if s, err = d.str(); err == nil {
			e.Type = Type(d.typeName(s))
		}
	case "f":
		var s []byte
		if s, err = d.str(); err == nil {
			e.F = F(d.fName(s))
		}
	case "topic":
		var s []byte
		if s, err = d.str(); err == nil {
			if string(s) != d.topic {
				d.topic = d.internBytes(s)
			}
			e.Topic = d.topic
		}
	case "partition":
		var v int64
		v, err = d.int(32)
		e.Partition = int32(v)
	case "key":
		var s []byte
		if s, err = d.str(); err == nil {
			e.Key = string(s)
		}
	case "value":
		var s []byte
		if s, err = d.str(); err == nil {
			e.Value = string(s)
		}
	case "offset":
		e.Offset, err = d.int(64)
	case "error":
		e.Error, err = d.internedString()
	case "records":
		e.Records, err = d.records()
	case "offsets":
		e.Offsets, err = d.offsets()
	case "txn_id":
		e.TxnID, err = d.int(64)
	case "txn":
		e.Txn = new(Txn)
		err = d.nested(e.Txn)
	case "group":
		e.Group = new(Membership)
		err = d.nested(e.Group)
	case "fault":
		e.Fault = new(Fault)
		err = d.nested(e.Fault)
	case "isr":
		e.ISR = new(PartitionState)
		err = d.nested(e.ISR)
	case "run":
		e.Run = new(Run)
		err = d.nested(e.Run)
	default:
		err = d.skip(0)
	}
	if err != nil {
		return fmt.Errorf("field %q: %w", key, err)
	}
	return nil
}

func (d *decoder) typeName(s []byte) string {
	switch string(s) {
	case "invoke":
		return string(Invoke)
	case "ok":
		return string(OK)
	case "fail":
		return string(Fail)
	case "info":
		return string(Info)
	}
	return d.internBytes(s)
}

func (d *decoder) fName(s []byte) string {
	switch string(s) {
	case "send":
		return string(FSend)
	case "poll":
		return string(FPoll)
	case "commit":
		return string(FCommit)
	case "process":
		return string(FProcess)
	case "assign":
		return string(FAssign)
	case "seek":
		return string(FSeek)
	case "meta":
		return string(FMeta)
	case "fault":
		return string(FFault)
	case "txn":
		return string(FTxn)
	case "crash":
		return string(FCrash)
	case "subscribe":
		return string(FSubscribe)
	case "run":
		return string(FRun)
	}
	return d.internBytes(s)
}

func (d *decoder) internedString() (string, error) {
	s, err := d.str()
	if err != nil {
		return "", err
	}
	return d.internBytes(s), nil
}

func (d *decoder) internBytes(s []byte) string {
	if v, ok := d.intern[string(s)]; ok {
		return v
	}
	v := string(s)
	if d.intern == nil {
		d.intern = make(map[string]string)
	}
	if len(d.intern) < internMax {
		d.intern[v] = v
	}
	return v
}

// nested decodes a rare nested object with encoding/json.
func (d *decoder) nested(v any) error {
	start := d.pos
	if d.peek() != '{' {
		return d.fail("expected object")
	}
	if err := d.skip(0); err != nil {
		return err
	}
	return json.Unmarshal(d.b[start:d.pos], v)
}

// int parses a JSON integer that fits in bits bits.
func (d *decoder) int(bits int) (int64, error) {
	v, i, msg := parseInt(d.b, skipWS(d.b, d.pos), bits)
	d.pos = i
	if msg != "" {
		return 0, d.fail(msg)
	}
	return v, nil
}

// parseInt parses a JSON integer at b[i:] that fits in bits bits; msg is empty on success.
func parseInt(b []byte, i int, bits int) (v int64, next int, msg string) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	digits := i
	var u uint64
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		if u > (1<<63)/10 {
			return 0, i, "integer overflow"
		}
		u = u*10 + uint64(c)
	}
	n := i - digits
	if n == 0 {
		return 0, i, "expected integer"
	}
	if n > 1 && b[digits] == '0' {
		return 0, i, "leading zero"
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, i, "number is not an integer"
	}
	limit := uint64(1) << (bits - 1)
	if (!neg && u >= limit) || (neg && u > limit) {
		return 0, i, "integer overflow"
	}
	if neg {
		return -int64(u), i, ""
	}
	return int64(u), i, ""
}

// str parses a string and returns its bytes, unescaped. The result may alias the line.
func (d *decoder) str() ([]byte, error) {
	b := d.b
	i := skipWS(b, d.pos)
	if i >= len(b) || b[i] != '"' {
		d.pos = i
		return nil, d.fail("expected string")
	}
	start := i
	for i++; i < len(b); i++ {
		c := b[i]
		if c == '"' {
			d.pos = i + 1
			if s := b[start+1 : i]; utf8.Valid(s) {
				return s, nil
			}
			// Invalid UTF-8 becomes U+FFFD, as encoding/json decodes it.
			d.pos = i
			return d.escapedString(start)
		}
		if c == '\\' {
			d.pos = i
			return d.escapedString(start)
		}
		if c < 0x20 {
			d.pos = i
			return nil, d.fail("control character in string")
		}
	}
	d.pos = i
	return nil, d.fail("unterminated string")
}

// escapedString finishes a string containing escapes, starting at its opening quote, and
// unescapes it with encoding/json so escapes and UTF-8 follow the JSON rules exactly.
func (d *decoder) escapedString(start int) ([]byte, error) {
	for d.pos < len(d.b) {
		c := d.b[d.pos]
		switch {
		case c == '\\':
			d.pos += 2
			continue
		case c == '"':
			d.pos++
			var s string
			if err := json.Unmarshal(d.b[start:d.pos], &s); err != nil {
				return nil, fmt.Errorf("%w: string at byte %d: %v", errSyntax, start, err)
			}
			return []byte(s), nil
		case c < 0x20:
			return nil, d.fail("control character in string")
		}
		d.pos++
	}
	return nil, d.fail("unterminated string")
}

func (d *decoder) records() ([]Record, error) {
	if err := d.expect('['); err != nil {
		return nil, err
	}
	if d.peek() == ']' {
		d.pos++
		return []Record{}, nil
	}
	// Every record opens one array: counting '[' bounds the records left on the line.
	out := make([]Record, 0, bytes.Count(d.b[d.pos:], []byte{'['}))
	for {
		if err := d.expect('['); err != nil {
			return nil, err
		}
		var r Record
		p, err := d.int(32)
		if err != nil {
			return nil, err
		}
		if err := d.expect(','); err != nil {
			return nil, err
		}
		if r.Offset, err = d.int(64); err != nil {
			return nil, err
		}
		if err := d.expect(','); err != nil {
			return nil, err
		}
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		r.Partition, r.Value = int32(p), string(s)
		if err := d.expect(']'); err != nil {
			return nil, err
		}
		out = append(out, r)
		if done, err := d.next(']'); done || err != nil {
			return out, err
		}
	}
}

func (d *decoder) offsets() ([]PartitionOffset, error) {
	if err := d.expect('['); err != nil {
		return nil, err
	}
	var out []PartitionOffset
	if d.peek() == ']' {
		d.pos++
		return out, nil
	}
	for {
		if err := d.expect('['); err != nil {
			return nil, err
		}
		p, err := d.int(32)
		if err != nil {
			return nil, err
		}
		if err := d.expect(','); err != nil {
			return nil, err
		}
		o, err := d.int(64)
		if err != nil {
			return nil, err
		}
		if err := d.expect(']'); err != nil {
			return nil, err
		}
		out = append(out, PartitionOffset{Partition: int32(p), Offset: o})
		if done, err := d.next(']'); done || err != nil {
			return out, err
		}
	}
}

// next consumes the separator after an element of an object or array: a comma (more to come)
// or the closing byte (done).
func (d *decoder) next(closing byte) (done bool, err error) {
	switch d.peek() {
	case ',':
		d.pos++
		return false, nil
	case closing:
		d.pos++
		return true, nil
	default:
		return false, d.fail("expected , or " + string(closing))
	}
}

// skip passes over one JSON value of any kind.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return d.fail("nesting too deep")
	}
	switch c := d.peek(); {
	case c == '"':
		_, err := d.str()
		return err
	case c == '{':
		d.pos++
		if d.peek() == '}' {
			d.pos++
			return nil
		}
		for {
			if _, err := d.str(); err != nil {
				return err
			}
			if err := d.expect(':'); err != nil {
				return err
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			if done, err := d.next('}'); done || err != nil {
				return err
			}
		}
	case c == '[':
		d.pos++
		if d.peek() == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			if done, err := d.next(']'); done || err != nil {
				return err
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	default:
		return d.fail("unexpected character")
	}
}

func (d *decoder) literal(s string) error {
	if len(d.b)-d.pos >= len(s) && string(d.b[d.pos:d.pos+len(s)]) == s {
		d.pos += len(s)
		return nil
	}
	return d.fail("invalid literal")
}

// number skips a JSON number, validating its grammar.
func (d *decoder) number() error {
	if d.b[d.pos] == '-' {
		d.pos++
	}
	digits := func() int {
		n := 0
		for d.pos < len(d.b) && d.b[d.pos] >= '0' && d.b[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if digits() == 0 {
		return d.fail("invalid number")
	}
	if d.pos < len(d.b) && d.b[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return d.fail("invalid number")
		}
	}
	if d.pos < len(d.b) && (d.b[d.pos] == 'e' || d.b[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.b) && (d.b[d.pos] == '+' || d.b[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return d.fail("invalid number")
		}
	}
	return nil
}
