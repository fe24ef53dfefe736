package checker

import (
	"strconv"
	"strings"
)

// chunkBits sets the size of one chunk of the value table: 65536 values.
const chunkBits = 16

// valueTable interns values into dense ids and stores their state in fixed-size chunks, so it
// never copies itself while growing and holds no pointers per value for the GC to scan.
// Values of the load generator's form "<producer>-<seq>" (decimal, no leading zeros) are found
// through per-producer slices indexed by sequence number and their text is not stored; any other
// value goes through a map and keeps its text.
type valueTable struct {
	chunks [][]value
	n      int32
	// bySeq[producer][seq] is id+1 of value "<producer>-<seq>".
	bySeq [][]int32
	other map[string]int32
	names map[int32]string // text of values not in the generator's form
}

// maxDenseProducer and maxDenseSeq bound the producer and sequence numbers kept in bySeq.
const (
	maxDenseProducer = 1 << 16
	maxDenseSeq      = 1 << 31
)

func newValueTable() *valueTable {
	return &valueTable{other: make(map[string]int32), names: make(map[int32]string)}
}

func (t *valueTable) len() int { return int(t.n) }

func (t *valueTable) at(id int32) *value { return &t.chunks[id>>chunkBits][id&(1<<chunkBits-1)] }

// parseValue splits "<producer>-<seq>" into its numbers.
func parseValue(s string) (prod int64, seq int64, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		prod = prod*10 + int64(s[i]-'0')
		i++
		if prod >= maxDenseProducer {
			return 0, 0, false
		}
	}
	if i == 0 || i+1 >= len(s) || s[i] != '-' || (i > 1 && s[0] == '0') {
		return 0, 0, false
	}
	j := i + 1
	if s[j] == '0' && len(s) > j+1 {
		return 0, 0, false
	}
	for ; j < len(s); j++ {
		c := s[j]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		seq = seq*10 + int64(c-'0')
		if seq >= maxDenseSeq {
			return 0, 0, false
		}
	}
	return prod, seq, true
}

// id returns the id of value s, interning it with fresh state when new.
func (t *valueTable) id(s string) int32 {
	prod, seq, ok := parseValue(s)
	if ok {
		if int(prod) < len(t.bySeq) && int(seq) < len(t.bySeq[prod]) {
			if id := t.bySeq[prod][seq]; id != 0 {
				return id - 1
			}
		}
		// Keep the slice dense: a sequence far beyond what the producer used so far goes to the map.
		if int(prod) >= len(t.bySeq) || int(seq) <= 2*len(t.bySeq[prod])+1024 {
			id := t.add(prod, seq)
			for int(prod) >= len(t.bySeq) {
				t.bySeq = append(t.bySeq, nil)
			}
			row := t.bySeq[prod]
			for int(seq) >= len(row) {
				row = append(row, make([]int32, max(len(row), 64))...)
			}
			row[seq] = id + 1
			t.bySeq[prod] = row
			return id
		}
	}
	if id, ok := t.other[s]; ok {
		return id
	}
	id := t.add(-1, 0)
	s = strings.Clone(s) // s may alias a decoding buffer
	t.other[s] = id
	t.names[id] = s
	return id
}

func (t *valueTable) add(prod, seq int64) int32 {
	id := t.n
	if int(id>>chunkBits) >= len(t.chunks) {
		t.chunks = append(t.chunks, make([]value, 1<<chunkBits))
	}
	t.n++
	*t.at(id) = value{invoke: -1, done: -1, ackOffset: -1, readOffset: -1, firstRead: -1,
		ackPart: -1, readPart: -1, session: -1, key: -1, txn: -1, proc: -1, prod: int32(prod), seq: seq}
	return id
}

// name returns the text of value id.
func (t *valueTable) name(id int32) string {
	v := t.at(id)
	if v.prod < 0 {
		return t.names[id]
	}
	b := make([]byte, 0, 24)
	b = strconv.AppendInt(b, int64(v.prod), 10)
	b = append(b, '-')
	return string(strconv.AppendInt(b, v.seq, 10))
}
