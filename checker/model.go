package checker

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// typedModel is a porcupine model with typed state, input and output. porcupine's Model works
// on interface{} values; toPorcupine wraps a typedModel once, so the model itself has no type
// assertions.
type typedModel[S, I, O any] struct {
	Init              func() S
	Step              func(state S, in I, out O) (bool, S)
	Equal             func(a, b S) bool
	Hash              func(S) uint64
	DescribeOperation func(in I, out O) string
	DescribeState     func(S) string
}

func (m typedModel[S, I, O]) toPorcupine() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return m.Init() },
		Step: func(state, in, out any) (bool, any) {
			ok, next := m.Step(state.(S), in.(I), out.(O))
			return ok, next
		},
		Equal:             func(a, b any) bool { return m.Equal(a.(S), b.(S)) },
		Hash:              func(s any) uint64 { return m.Hash(s.(S)) },
		DescribeOperation: func(in, out any) string { return m.DescribeOperation(in.(I), out.(O)) },
		DescribeState:     func(s any) string { return m.DescribeState(s.(S)) },
	}
}

// logState is the state of one partition's log: the next offset a send may take (tail), a
// running hash of every (offset, value) appended, and the log itself as a persistent trie so
// states share structure.
type logState struct {
	tail int64
	hash uint64
	log  *trie
}

// logInput is a send of one value, or a poll.
type logInput struct {
	send  bool
	value int32
	name  string
}

// logOutput is a send's acknowledged offset, or the records a poll returned on this partition.
type logOutput struct {
	offset  int64
	records []linRecord
}

type linRecord struct {
	offset int64
	value  int32
	name   string
}

// logModel is the sequential specification of one partition's log:
//   - a send acknowledged at offset o is legal when o ≥ tail (offsets may have gaps: transaction
//     markers and indeterminate sends never read take offsets too); the tail becomes o+1;
//   - a poll is legal when every record it returned lies below the tail and the log holds
//     exactly that value at that offset.
//
// Indeterminate sends are not ops of their own: one that some read saw becomes a send
// acknowledged at the offset it was read at, with an open end; one nobody read may or may not
// have happened and constrains nothing, so it is left out.
var logModel = typedModel[logState, logInput, logOutput]{
	Init: func() logState { return logState{} },
	Step: func(s logState, in logInput, out logOutput) (bool, logState) {
		if in.send {
			if out.offset < s.tail {
				return false, s
			}
			return true, logState{tail: out.offset + 1, hash: mixHash(s.hash, out.offset, in.value), log: s.log.set(out.offset, in.value)}
		}
		for _, r := range out.records {
			if r.offset >= s.tail || s.log.get(r.offset) != r.value {
				return false, s
			}
		}
		return true, s
	},
	Equal: func(a, b logState) bool { return a.tail == b.tail && a.hash == b.hash },
	Hash:  func(s logState) uint64 { return s.hash ^ uint64(s.tail)*0x9e3779b97f4a7c15 },
	DescribeOperation: func(in logInput, out logOutput) string {
		if in.send {
			return fmt.Sprintf("send(%s) → %d", in.name, out.offset)
		}
		var b strings.Builder
		b.WriteString("poll → [")
		for i, r := range out.records {
			if i == 6 {
				fmt.Fprintf(&b, " …%d more", len(out.records)-i)
				break
			}
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%d:%s", r.offset, r.name)
		}
		b.WriteString("]")
		return b.String()
	},
	DescribeState: func(s logState) string { return fmt.Sprintf("tail=%d", s.tail) },
}

func mixHash(h uint64, off int64, v int32) uint64 {
	x := uint64(off)*0x9e3779b97f4a7c15 ^ uint64(uint32(v))*0xc2b2ae3d27d4eb4f
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return (h ^ x) * 0x94d049bb133111eb
}

// trie is a persistent 16-ary trie from offsets to value ids: set copies one path and shares
// the rest, so every porcupine state keeps its own log cheaply. A nil *trie is empty.
type trie struct {
	height int // the trie holds offsets < 16^height; at maxTrieHeight, every non-negative offset
	root   *trieNode
}

// maxTrieHeight is the height that covers every non-negative int64 offset.
const maxTrieHeight = 16

// fits reports whether off lies in a trie of height h.
func fits(off int64, h int) bool { return h >= maxTrieHeight || off < int64(1)<<(4*h) }

type trieNode struct {
	kids [16]*trieNode
	val  int32 // at height 0: value id + 1
}

func (t *trie) get(off int64) int32 {
	if t == nil || off < 0 || !fits(off, t.height) {
		return -1
	}
	n := t.root
	for h := t.height - 1; h >= 0 && n != nil; h-- {
		n = n.kids[(off>>(4*h))&15]
	}
	if n == nil {
		return -1
	}
	return n.val - 1
}

func (t *trie) set(off int64, v int32) *trie {
	if off < 0 {
		return t
	}
	nt := &trie{}
	if t != nil {
		*nt = *t
	}
	for !fits(off, nt.height) {
		root := &trieNode{}
		root.kids[0] = nt.root
		if nt.root == nil {
			root = nil
		}
		nt.root, nt.height = root, nt.height+1
	}
	nt.root = setNode(nt.root, nt.height, off, v)
	return nt
}

func setNode(n *trieNode, h int, off int64, v int32) *trieNode {
	c := &trieNode{}
	if n != nil {
		*c = *n
	}
	if h == 0 {
		c.val = v + 1
		return c
	}
	i := (off >> (4 * (h - 1))) & 15
	c.kids[i] = setNode(c.kids[i], h-1, off, v)
	return c
}
