package checker

import (
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// chunkBits sets the size of one chunk of the value table: 65536 values.
const chunkBits = 16

// valueTable interns values into dense ids and stores their state in fixed-size chunks, so it
// never copies itself while growing and holds no pointers per value for the GC to scan.
// Values of the load generator's form "<producer>-<seq>" (decimal, no leading zeros) are found
// through per-producer slices indexed by sequence number and their text is not stored; so are
// transform outputs "<input>/<producer>-<seq>" (in their own slices, the input interned as a
// value of its own); any other value goes through a map and keeps its text.
type valueTable struct {
	chunks [][]value
	n      int32
	// bySeq[producer][seq] is id+1 of value "<producer>-<seq>"; outBySeq the same for the
	// output part of transform outputs.
	bySeq    [][]int32
	outBySeq [][]int32
	other    map[string]int32
	names    map[int32]string // text of values not in the generator's form
	// mapped holds the chunks allocated outside the Go heap, for release.
	mapped [][]byte
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
	// Most values are "<producer>-<seq>": parsed first, without looking for a slash.
	prod, seq, ok := parseValue(s)
	in, isOutput := "", false
	if !ok {
		var out string
		in, out, isOutput = strings.Cut(s, "/")
		isOutput = isOutput && in != ""
		if isOutput {
			prod, seq, ok = parseValue(out)
		}
	}
	if ok {
		table := &t.bySeq
		if isOutput {
			table = &t.outBySeq
		}
		if id, found := denseLookup(*table, prod, seq); found {
			return id
		}
		// Keep the slice dense: a sequence far beyond what the producer used so far goes to the map.
		if int(prod) >= len(*table) || int(seq) <= 2*len((*table)[prod])+1024 {
			id := t.add(prod, seq)
			denseStore(table, prod, seq, id)
			if isOutput {
				t.setInput(id, t.id(in))
			}
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
	if isOutput {
		t.setInput(id, t.id(in))
	}
	return id
}

func (t *valueTable) setInput(id, in int32) {
	v := t.at(id)
	v.in = in
	v.flags |= flOutput
}

// denseLookup returns the id stored for (prod, seq) in a per-producer table.
func denseLookup(table [][]int32, prod, seq int64) (int32, bool) {
	if int(prod) < len(table) && int(seq) < len(table[prod]) {
		if id := table[prod][seq]; id != 0 {
			return id - 1, true
		}
	}
	return 0, false
}

// denseStore stores id for (prod, seq) in a per-producer table, growing it.
func denseStore(table *[][]int32, prod, seq int64, id int32) {
	for int(prod) >= len(*table) {
		*table = append(*table, nil)
	}
	row := (*table)[prod]
	for int(seq) >= len(row) {
		row = append(row, make([]int32, max(len(row), 64))...)
	}
	row[seq] = id + 1
	(*table)[prod] = row
}

func (t *valueTable) add(prod, seq int64) int32 {
	id := t.n
	if int(id>>chunkBits) >= len(t.chunks) {
		t.chunks = append(t.chunks, t.newChunk())
	}
	t.n++
	*t.at(id) = value{invoke: -1, done: -1, ackOffset: -1, readOffset: -1, firstRead: -1,
		ackPart: -1, readPart: -1, session: -1, key: -1, txn: -1, proc: -1, prod: int32(prod), seq: int32(seq), in: -1}
	return id
}

// name returns the text of value id.
func (t *valueTable) name(id int32) string {
	v := t.at(id)
	if v.prod < 0 {
		return t.names[id]
	}
	b := make([]byte, 0, 24)
	if v.flags&flOutput != 0 {
		b = append(append(b, t.name(v.in)...), '/')
	}
	b = strconv.AppendInt(b, int64(v.prod), 10)
	b = append(b, '-')
	return string(strconv.AppendInt(b, int64(v.seq), 10))
}

// newChunk allocates a chunk outside the Go heap (an anonymous private mapping) when it can:
// values hold no pointers, and keeping the table, most of the checker's memory, out of the heap
// stops the garbage collector from letting the heap grow to twice its size between cycles,
// which would double the peak RSS. Its pages are populated at once, not faulted in one by one.
// It falls back to the heap when mapping fails.
func (t *valueTable) newChunk() []value {
	size := int(unsafe.Sizeof(value{})) << chunkBits
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_POPULATE)
	if err != nil {
		return make([]value, 1<<chunkBits)
	}
	t.mapped = append(t.mapped, mem)
	return unsafe.Slice((*value)(unsafe.Pointer(&mem[0])), 1<<chunkBits)
}

// release returns the chunks allocated outside the heap. The table must not be used after.
func (t *valueTable) release() {
	for _, mem := range t.mapped {
		syscall.Munmap(mem)
	}
	t.mapped, t.chunks, t.n = nil, nil, 0
}
