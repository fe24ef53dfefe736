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

// logState is the state of one window of a partition's log (see linWindow): how many of the
// window's existing offsets have been appended (next), a running hash of every (offset, value)
// appended, and the log itself as a persistent trie keyed by the offset's index in the window,
// so states share structure.
type logState struct {
	next int32
	hash uint64
	log  *trie
}

// logInput is a send of one value, or a poll.
type logInput struct {
	send  bool
	value int32
	name  string
}

// logOutput is a send's offset (and its index among the window's existing offsets), or the
// records a poll returned in the window.
type logOutput struct {
	offset  int64
	idx     int32
	records []linRecord
}

type linRecord struct {
	offset int64
	idx    int32
	value  int32
	name   string
}

// logModel is the sequential specification of one window of a partition's log. The offsets
// that exist are known before the search: every acknowledged offset, every offset a pinned
// indeterminate send took and every offset a read returned; between them the log holds
// nothing readable (transaction markers, aborted or lost records no read saw). So:
//   - a send is legal only at the next offset that exists (idx == next); next advances by one;
//   - a poll is legal when every record it returned lies below next and the log holds exactly
//     that value there: it checks a prefix.
//
// A send can never be linearized at a later offset first, so the search never interleaves the
// hundreds of sends a pipelined producer has in flight: the only freedom left is where polls
// go, and two sends claiming one offset.
var logModel = typedModel[logState, logInput, logOutput]{
	Init: func() logState { return logState{} },
	Step: func(s logState, in logInput, out logOutput) (bool, logState) {
		if in.send {
			if out.idx != s.next {
				return false, s
			}
			return true, logState{next: s.next + 1, hash: mixHash(s.hash, out.offset, in.value), log: s.log.set(int64(out.idx), in.value)}
		}
		for _, r := range out.records {
			if r.idx >= s.next || s.log.get(int64(r.idx)) != r.value {
				return false, s
			}
		}
		return true, s
	},
	Equal: func(a, b logState) bool { return a.next == b.next && a.hash == b.hash },
	Hash:  func(s logState) uint64 { return s.hash ^ uint64(s.next)*0x9e3779b97f4a7c15 },
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
	DescribeState: func(s logState) string { return fmt.Sprintf("next=%d", s.next) },
}

func mixHash(h uint64, off int64, v int32) uint64 {
	x := uint64(off)*0x9e3779b97f4a7c15 ^ uint64(uint32(v))*0xc2b2ae3d27d4eb4f
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return (h ^ x) * 0x94d049bb133111eb
}

// trie is a persistent 16-ary trie from offsets (here: offset indexes) to value ids: set copies one path and shares
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
