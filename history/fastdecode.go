package history

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// decodeFast parses a line in the exact layout the Writer produces into e, with local state
// only. It returns false on anything else, leaving e in an unspecified state; the caller then
// zeroes e and uses the general decoder, which accepts any valid JSON and names errors
// precisely.
func (d *decoder) decodeFast(line []byte, e *Event) bool {
	end, ok := d.fastPrefix(line, e)
	return ok && end == len(line)
}

// fastPrefix parses the event that starts b in the Writer's layout: the head fields i, t, p,
// type and f in that order, then any of the fields the load generator writes on every record
// (topic, partition, key, value, offset, error, records, offsets, txn_id), with no whitespace and
// strings without escapes. It returns the length of the event's JSON object, which is either
// all of b or followed by a newline, so a block of lines is parsed without splitting it first.
// It returns false for anything else (nested objects, escapes, other fields, a '\r' before the
// newline, malformed input).
func (d *decoder) fastPrefix(b []byte, e *Event) (int, bool) {
	if !litHead.at(b, 0) {
		return 0, false
	}
	var ok bool
	var i int
	if e.Index, i, ok = swarInt(b, 5); !ok || !litT.at(b, i) {
		return 0, false
	}
	if e.Time, i, ok = swarInt(b, i+5); !ok || !litP.at(b, i) {
		return 0, false
	}
	var p int64
	if p, i, ok = swarInt(b, i+5); !ok || !litType.at(b, i) {
		return 0, false
	}
	e.Process = int(p)
	var typ, f string
	if typ, i, ok = fastName(b, i+8, &commonTypes, d.typeName); !ok || !litF.at(b, i) {
		return 0, false
	}
	if f, i, ok = fastName(b, i+5, &commonFs, d.fName); !ok {
		return 0, false
	}
	e.Type, e.F = Type(typ), F(f)
	ks, ke, vs, ve := -1, -1, -1, -1 // key and value positions, allocated together at the end
	for i+2 < len(b) && b[i] == ',' && b[i+1] == '"' {
		var s []byte
		switch b[i+2] {
		case 't':
			switch {
			case litTopic.at(b, i):
				if s, i, ok = fastStr(b, i+9); ok {
					if string(s) != d.topic {
						d.topic = d.internBytes(s)
					}
					e.Topic = d.topic
				}
			case litTxnID.at(b, i):
				e.TxnID, i, ok = swarInt(b, i+10)
			default:
				return 0, false
			}
		case 'p':
			if !litPartition.at(b, i) {
				return 0, false
			}
			var v int64
			v, i, ok = swarInt(b, i+13)
			e.Partition = int32(v)
			ok = ok && v == int64(e.Partition)
		case 'k':
			if !litKey.at(b, i) {
				return 0, false
			}
			ks = i + 8
			_, i, ok = fastStr(b, i+7)
			ke = i - 1
		case 'v':
			if !litValue.at(b, i) {
				return 0, false
			}
			vs = i + 10
			_, i, ok = fastStr(b, i+9)
			ve = i - 1
		case 'o':
			switch {
			case litOffset.at(b, i):
				e.Offset, i, ok = swarInt(b, i+10)
			case litOffsets.at(b, i):
				e.Offsets, i, ok = fastOffsets(b, i+11)
			default:
				return 0, false
			}
		case 'e':
			if !litError.at(b, i) {
				return 0, false
			}
			if s, i, ok = fastStr(b, i+9); ok {
				e.Error = d.internBytes(s)
			}
		case 'r':
			if !litRecords.at(b, i) {
				return 0, false
			}
			e.Records, i, ok = d.fastRecords(b, i+11)
		default:
			return 0, false
		}
		if !ok {
			return 0, false
		}
	}
	if i >= len(b) || b[i] != '}' || (i+1 < len(b) && b[i+1] != '\n') {
		return 0, false
	}
	d.setStrings(b, e, ks, ke, vs, ve)
	return i + 1, true
}

// A literal is a short byte string the fast path expects at a known place, compared a word at a
// time: the bytes of the literal, in two little-endian words, and masks covering them.
type literal struct {
	s              string
	w0, m0, w1, m1 uint64
}

// newLiteral prepares s (at most 16 bytes) for at.
func newLiteral(s string) literal {
	l := literal{s: s}
	for k := range len(s) {
		c, m := uint64(s[k])<<(8*(k%8)), uint64(0xFF)<<(8*(k%8))
		if k < 8 {
			l.w0, l.m0 = l.w0|c, l.m0|m
		} else {
			l.w1, l.m1 = l.w1|c, l.m1|m
		}
	}
	return l
}

// at reports whether b holds l at i: two masked word compares when 16 bytes remain.
func (l *literal) at(b []byte, i int) bool {
	if i >= 0 && len(b)-i >= 16 {
		return binary.LittleEndian.Uint64(b[i:])&l.m0 == l.w0 && binary.LittleEndian.Uint64(b[i+8:])&l.m1 == l.w1
	}
	return i >= 0 && len(b)-i >= len(l.s) && string(b[i:i+len(l.s)]) == l.s
}

// The literals of the Writer's layout.
var (
	litHead      = newLiteral(`{"i":`)
	litT         = newLiteral(`,"t":`)
	litP         = newLiteral(`,"p":`)
	litType      = newLiteral(`,"type":`)
	litF         = newLiteral(`,"f":`)
	litTopic     = newLiteral(`,"topic":`)
	litPartition = newLiteral(`,"partition":`)
	litKey       = newLiteral(`,"key":`)
	litValue     = newLiteral(`,"value":`)
	litOffset    = newLiteral(`,"offset":`)
	litOffsets   = newLiteral(`,"offsets":`)
	litError     = newLiteral(`,"error":`)
	litRecords   = newLiteral(`,"records":`)
	litTxnID     = newLiteral(`,"txn_id":`)
)

// A commonName is a name a string field usually holds, recognized by its quoted bytes.
type commonName struct {
	quoted literal
	name   string
}

// The common types and functions of a run's events.
var (
	commonTypes = [2]commonName{{newLiteral(`"ok"`), string(OK)}, {newLiteral(`"invoke"`), string(Invoke)}}
	commonFs    = [2]commonName{{newLiteral(`"send"`), string(FSend)}, {newLiteral(`"poll"`), string(FPoll)}}
)

// fastName returns the string value at b[i:] as a name the decoder shares: one of common by
// its quoted bytes, any other through name (typeName, fName). It returns the index after it.
func fastName(b []byte, i int, common *[2]commonName, name func([]byte) string) (string, int, bool) {
	for k := range common {
		if c := &common[k]; c.quoted.at(b, i) {
			return c.name, i + len(c.quoted.s), true
		}
	}
	s, i, ok := fastStr(b, i)
	if !ok {
		return "", i, false
	}
	return name(s), i, true
}

// setStrings sets Key and Value from their positions in b with one allocation when both are
// present (the Writer puts them side by side).
func (d *decoder) setStrings(b []byte, e *Event, ks, ke, vs, ve int) {
	switch {
	case ks >= 0 && vs >= 0:
		lo, hi := min(ks, vs), max(ke, ve)
		span := d.string(b[lo:hi])
		e.Key, e.Value = span[ks-lo:ke-lo], span[vs-lo:ve-lo]
	case ks >= 0:
		e.Key = d.string(b[ks:ke])
	case vs >= 0:
		e.Value = d.string(b[vs:ve])
	}
}

// string returns b as a string: a copy, or with aliasing on, b itself (see
// Reader.AliasStrings).
func (d *decoder) string(b []byte) string {
	if d.alias && len(b) > 0 {
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}

// SWAR ("SIMD within a register") constants: one byte value repeated in every byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// pow10 holds the powers of ten a number's 8-digit chunks are scaled by.
var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// swarInt parses a plain decimal integer of at most 18 digits at b[i:], 8 digits at a time
// while whole words remain, then a byte at a time.
func swarInt(b []byte, i int) (int64, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	if i+1 < len(b) && b[i]-'0' <= 9 && b[i+1]-'0' > 9 { // one digit: partitions, processes
		v := int64(b[i] - '0')
		if neg {
			v = -v
		}
		return v, i + 1, true
	}
	var u uint64
	more := true
	for more && len(b)-i >= 8 && i-start <= 18 {
		w := binary.LittleEndian.Uint64(b[i:])
		n := leadingDigits(w)
		u = u*pow10[n] + digitsValue(w, n)
		i += n
		more = n == 8
	}
	for more && i < len(b) && i-start <= 18 {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		u = u*10 + uint64(c)
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || (b[start] == '0' && digits > 1) {
		return 0, i, false
	}
	if neg {
		return -int64(u), i, true
	}
	return int64(u), i, true
}

// leadingDigits returns how many bytes of w, first byte lowest, are ASCII digits before the
// first that is not (8 when all are). A byte is a digit when its high nibble is 3 and stays 3
// after adding 6; a carry out of a byte ≥ 0xFA only reaches the bytes after it, which a
// non-digit before them already hides.
func leadingDigits(w uint64) int {
	const hiNibbles, threes = 0xF0F0F0F0F0F0F0F0, 0x3030303030303030
	nd := (w&hiNibbles ^ threes) | ((w+6*ones)&hiNibbles ^ threes) // non-zero bytes: non-digits
	m := (nd | (nd&^highs + 0x7F*ones)) & highs                    // high bit of each non-zero byte
	return bits.TrailingZeros64(m) >> 3
}

// digitsValue returns the value of the first n (0..8) bytes of w, all ASCII digits, first
// byte most significant: shifting them to the top leaves zeros as leading digits, then pairs,
// quads and octets of digits are combined in place.
func digitsValue(w uint64, n int) uint64 {
	w = (w << (64 - 8*uint(n))) & (0x0F * ones)
	w = (w*10 + w>>8) & 0x00FF00FF00FF00FF
	w = (w*100 + w>>16) & 0x0000FFFF0000FFFF
	return (w*10000 + w>>32) & 0xFFFFFFFF
}

// fastStr returns the contents of the string at b[i:] when it has no escapes, control
// characters or non-ASCII bytes, scanning 8 bytes at a time for the closing quote.
func fastStr(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	i++
	start := i
	for len(b)-i >= 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		quote, backslash := w^('"'*ones), w^('\\'*ones)
		special := ((w - 0x20*ones) | (quote-ones)&^quote | (backslash-ones)&^backslash) &^ w
		if m := (special | w) & highs; m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			if b[i] == '"' {
				return b[start:i], i + 1, true
			}
			return nil, i, false
		}
		i += 8
	}
	for ; i < len(b); i++ {
		c := b[i]
		if c == '"' {
			return b[start:i], i + 1, true
		}
		if c == '\\' || c < 0x20 || c >= 0x80 { // escapes, controls, non-ASCII: general path
			return nil, i, false
		}
	}
	return nil, i, false
}

// fastRecords parses [[p,o,"v"],...].
func (d *decoder) fastRecords(b []byte, i int) ([]Record, int, bool) {
	if i+1 >= len(b) || b[i] != '[' {
		return nil, i, false
	}
	i++
	if b[i] == ']' {
		return []Record{}, i + 1, true
	}
	out := make([]Record, 0, countOpenings(b[i:]))
	// Values are sliced from one string spanning all of them, allocated once at the end; until
	// then each value's position is kept in pos.
	var posBuf [64]int32
	pos := posBuf[:0]
	for {
		p, off, j, ok := fastPair(b, i)
		if !ok || b[j] != ',' {
			return nil, i, false
		}
		vs := j + 2
		_, j, ok = fastStr(b, j+1)
		if !ok || j+1 >= len(b) || b[j] != ']' {
			return nil, i, false
		}
		out = append(out, Record{Partition: p, Offset: off})
		pos = append(pos, int32(vs), int32(j-1))
		i = j + 1
		switch b[i] {
		case ',':
			i++
		case ']':
			lo, hi := int(pos[0]), int(pos[len(pos)-1])
			span := d.string(b[lo:hi])
			for k := range out {
				out[k].Value = span[int(pos[2*k])-lo : int(pos[2*k+1])-lo]
			}
			return out, i + 1, true
		default:
			return nil, i, false
		}
	}
}

// fastOffsets parses [[p,o],...]; an empty list is nil, as the general decoder has it.
func fastOffsets(b []byte, i int) ([]PartitionOffset, int, bool) {
	if i+1 >= len(b) || b[i] != '[' {
		return nil, i, false
	}
	i++
	if b[i] == ']' {
		return nil, i + 1, true
	}
	out := make([]PartitionOffset, 0, countOpenings(b[i:]))
	for {
		p, off, j, ok := fastPair(b, i)
		if !ok || j+1 >= len(b) || b[j] != ']' {
			return nil, i, false
		}
		out = append(out, PartitionOffset{Partition: p, Offset: off})
		i = j + 1
		switch b[i] {
		case ',':
			i++
		case ']':
			return out, i + 1, true
		default:
			return nil, i, false
		}
	}
}

// fastPair parses the "[partition,offset" that opens a record or an offset at b[i]. j is
// the index after the offset, within b when ok.
func fastPair(b []byte, i int) (p int32, off int64, j int, ok bool) {
	if i >= len(b) || b[i] != '[' {
		return 0, 0, i, false
	}
	p64, j, ok := swarInt(b, i+1)
	if !ok || j >= len(b) || b[j] != ',' || p64 != int64(int32(p64)) {
		return 0, 0, i, false
	}
	off, j, ok = swarInt(b, j+1)
	if !ok || j >= len(b) {
		return 0, 0, i, false
	}
	return int32(p64), off, j, true
}

// countOpenings bounds the elements left in a list of lists: one '[' each, counted up to the
// end of the line.
func countOpenings(b []byte) int {
	if nl := bytes.IndexByte(b, '\n'); nl >= 0 {
		b = b[:nl]
	}
	return bytes.Count(b, []byte{'['})
}
