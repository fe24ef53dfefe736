package history

import (
	"bytes"
	"unsafe"
)

// decodeFast parses a line in the exact layout the Writer produces (no whitespace, known
// fields, strings without escapes) into e, with local state only. It returns false on anything
// else, leaving e in an unspecified state; the caller then zeroes e and uses the general
// decoder, which accepts any valid JSON and names errors precisely.
func (d *decoder) decodeFast(b []byte, e *Event) bool {
	n := len(b)
	if n < 2 || b[0] != '{' || b[n-1] != '}' {
		return false
	}
	i := 1
	ks0, ke0, vs0, ve0 := -1, -1, -1, -1 // key and value positions, allocated together at the end
	for {
		if i >= n || b[i] != '"' {
			return false
		}
		ks := i + 1
		j := ks
		for j < n && b[j] != '"' {
			j++
		}
		if j+1 >= n || b[j+1] != ':' {
			return false
		}
		key := b[ks:j]
		i = j + 2
		var ok bool
		switch len(key) {
		case 1:
			switch key[0] {
			case 'i':
				e.Index, i, ok = fastInt(b, i)
			case 't':
				e.Time, i, ok = fastInt(b, i)
			case 'p':
				var v int64
				v, i, ok = fastInt(b, i)
				e.Process = int(v)
				ok = ok && v == int64(e.Process)
			case 'f':
				var s []byte
				if s, i, ok = fastStr(b, i); ok {
					e.F = F(d.fName(s))
				}
			}
		case 3:
			if string(key) == "key" {
				ks0 = i + 1
				_, i, ok = fastStr(b, i)
				ke0 = i - 1
			}
		case 4:
			if string(key) == "type" {
				var s []byte
				if s, i, ok = fastStr(b, i); ok {
					e.Type = Type(d.typeName(s))
				}
			}
		case 5:
			switch string(key) {
			case "topic":
				var s []byte
				if s, i, ok = fastStr(b, i); ok {
					if string(s) != d.topic {
						d.topic = d.internBytes(s)
					}
					e.Topic = d.topic
				}
			case "value":
				vs0 = i + 1
				_, i, ok = fastStr(b, i)
				ve0 = i - 1
			}
		case 6:
			if string(key) == "offset" {
				e.Offset, i, ok = fastInt(b, i)
			}
		case 7:
			if string(key) == "records" {
				e.Records, i, ok = d.fastRecords(b, i)
			}
		case 9:
			if string(key) == "partition" {
				var v int64
				v, i, ok = fastInt(b, i)
				e.Partition = int32(v)
				ok = ok && v == int64(e.Partition)
			}
		}
		if !ok {
			return false
		}
		if i >= n {
			return false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			if i != n-1 {
				return false
			}
			d.setStrings(b, e, ks0, ke0, vs0, ve0)
			return true
		default:
			return false
		}
	}
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

// fastInt parses a plain decimal integer of at most 18 digits.
func fastInt(b []byte, i int) (int64, int, bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var v int64
	for i < len(b) {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		v = v*10 + int64(c)
		i++
	}
	if i == start || i-start > 18 || (b[start] == '0' && i-start > 1) {
		return 0, i, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// fastStr returns the contents of a string without escapes or control characters.
func fastStr(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	i++
	start := i
	for i < len(b) {
		c := b[i]
		if c == '"' {
			return b[start:i], i + 1, true
		}
		if c == '\\' || c < 0x20 || c >= 0x80 { // escapes, controls, non-ASCII: general path
			return nil, i, false
		}
		i++
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
	out := make([]Record, 0, bytes.Count(b[i:], []byte{'['}))
	// Values are sliced from one string spanning all of them, allocated once at the end; until
	// then each Record's Offset is kept and its value position is stored in pos.
	var posBuf [64]int32
	pos := posBuf[:0]
	for {
		if i >= len(b) || b[i] != '[' {
			return nil, i, false
		}
		p, j, ok := fastInt(b, i+1)
		if !ok || j >= len(b) || b[j] != ',' || p != int64(int32(p)) {
			return nil, i, false
		}
		off, j, ok := fastInt(b, j+1)
		if !ok || j >= len(b) || b[j] != ',' {
			return nil, i, false
		}
		vs := j + 2
		_, j, ok = fastStr(b, j+1)
		if !ok || j+1 >= len(b) || b[j] != ']' {
			return nil, i, false
		}
		out = append(out, Record{Partition: int32(p), Offset: off})
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
