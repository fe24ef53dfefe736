package checker

import (
	"fmt"
	"math"
	"sort"

	"github.com/anishathalye/porcupine"
)

// linWindow is a run of consecutive existing offsets of one partition that porcupine checks
// on its own: the sends placed in it and the part of every poll that read it.
//
// Windows are independent because logModel fixes the order of sends: the send at the k-th
// existing offset is linearized k-th, so in every linearization it takes effect no earlier
// than the latest invoke among the sends below it. A window starts at a send invoked after
// every send below it (a free cut): then whatever the windows below chose, the earliest
// linearization of each (which exists when any does: the constraints are lower and upper
// time bounds only) ends before this window's first send can take effect, and the windows
// compose. Polls change no state, so splitting a poll's records between windows loses
// nothing. Only when no free cut comes within 4×WindowSends sends does a window start
// anyway; its first send then carries that earliest time as its invoke (clamp), which every
// linearization respects, so the composition stays exact.
type linWindow struct {
	sendLo, sendHi int   // the window's sends: p.sends[sendLo:sendHi]
	eLo, eHi       int   // the window's existing offsets: existing[eLo:eHi]
	loOff, hiOff   int64 // offsets in [loOff, hiOff) belong to the window
	first, last    int64 // first and last existing offset, for reports
	clamp          int64 // earliest time the first send may take effect; math.MinInt64 for none
	polls          []int32
	existing       []int64 // the partition's existing offsets, shared
}

// splitWindows sorts p's sends by offset and cuts the partition into windows of about
// maxSends sends.
func splitWindows(p *partOps, maxSends int) []linWindow {
	sort.Slice(p.sends, func(i, j int) bool {
		a, b := p.sends[i], p.sends[j]
		return a.off < b.off || (a.off == b.off && a.call < b.call)
	})
	existing := make([]int64, 0, len(p.sends))
	for _, s := range p.sends {
		existing = append(existing, s.off)
	}
	for _, pl := range p.polls {
		for _, r := range pl.recs {
			existing = append(existing, r.off)
		}
	}
	sort.Slice(existing, func(i, j int) bool { return existing[i] < existing[j] })
	existing = uniq(existing)
	var ws []linWindow
	open := func(sendLo int, loOff, clamp int64) {
		ws = append(ws, linWindow{sendLo: sendLo, loOff: loOff, clamp: clamp, existing: existing})
	}
	open(0, math.MinInt64, math.MinInt64)
	maxCall := int64(math.MinInt64)
	for i, s := range p.sends {
		w := &ws[len(ws)-1]
		n := i - w.sendLo
		if n >= maxSends && s.off != p.sends[i-1].off && (s.call >= maxCall || n >= 4*maxSends) {
			clamp := int64(math.MinInt64)
			if s.call < maxCall {
				clamp = maxCall
			}
			open(i, s.off, clamp)
		}
		maxCall = max(maxCall, s.call)
	}
	for i := range ws {
		w := &ws[i]
		w.sendHi = len(p.sends)
		w.hiOff = math.MaxInt64
		if i+1 < len(ws) {
			w.sendHi, w.hiOff = ws[i+1].sendLo, ws[i+1].loOff
		}
		w.eLo = sort.Search(len(existing), func(k int) bool { return existing[k] >= w.loOff })
		w.eHi = sort.Search(len(existing), func(k int) bool { return existing[k] >= w.hiOff })
		if w.eHi > w.eLo {
			w.first, w.last = existing[w.eLo], existing[w.eHi-1]
		}
	}
	for pi, pl := range p.polls {
		last := -1
		for _, r := range pl.recs {
			wi := sort.Search(len(ws), func(k int) bool { return ws[k].loOff > r.off }) - 1
			if wi != last {
				ws[wi].polls = append(ws[wi].polls, int32(pi))
				last = wi
			}
		}
	}
	for i := range ws {
		ws[i].polls = uniq(ws[i].polls)
	}
	return ws
}

// uniq removes repeats from a sorted slice in place.
func uniq[T comparable](s []T) []T {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// idx returns the index of existing offset off within the window.
func (w *linWindow) idx(off int64) int32 {
	return int32(sort.Search(w.eHi-w.eLo, func(k int) bool { return w.existing[w.eLo+k] >= off }))
}

// ops builds the window's porcupine operations. why is set instead when the window is
// illegal before any search, and evidence then holds the few operations that show it, for
// the visualisation (nil when there are none): two sends placed at one offset, which no
// linearization of a log can hold (logModel appends each send at the next offset once; a
// search would have to try both orders of every such pair before giving up, exponential
// when a broker or proxy acknowledged a whole batch at offsets others took), or a first send
// that returned before the earliest time it could take effect.
func (w *linWindow) ops(p *partOps, names []string) (ops []porcupine.Operation, why string, evidence []porcupine.Operation) {
	for i := w.sendLo + 1; i < w.sendHi; i++ {
		if a, b := p.sends[i-1], p.sends[i]; a.off == b.off {
			return nil, fmt.Sprintf("offset %d was written by two sends, %q and %q, and a log holds one record per offset", a.off, names[a.value], names[b.value]),
				conflictOps(p, i-1, i, names)
		}
	}
	for i := w.sendLo; i < w.sendHi; i++ {
		s := p.sends[i]
		call := s.call
		if i == w.sendLo && w.clamp > call {
			if w.clamp > s.ret {
				return nil, fmt.Sprintf("offset %d was written by a send that returned at t=%d, before a send at a lower offset was invoked (t=%d)", s.off, s.ret, w.clamp), nil
			}
			call = w.clamp
		}
		ops = append(ops, porcupine.Operation{ClientId: int(s.client), Call: call, Return: s.ret,
			Input: logInput{send: true, value: s.value, name: names[s.value]}, Output: logOutput{offset: s.off, idx: w.idx(s.off)}})
	}
	for _, pi := range w.polls {
		pl := &p.polls[pi]
		var recs []linRecord
		for _, r := range pl.recs {
			if r.off >= w.loOff && r.off < w.hiOff {
				recs = append(recs, linRecord{offset: r.off, idx: w.idx(r.off), value: r.value, name: names[r.value]})
			}
		}
		ops = append(ops, porcupine.Operation{ClientId: int(pl.client), Call: pl.call, Return: pl.ret,
			Input: logInput{}, Output: logOutput{records: recs}})
	}
	return ops, "", nil
}

// conflictOps are the operations that show two sends, p.sends[a] and p.sends[b], placed at
// one offset: the two sends and the polls that read that offset, as a log of that offset
// alone, which porcupine finds illegal at once.
func conflictOps(p *partOps, a, b int, names []string) []porcupine.Operation {
	off := p.sends[a].off
	var ops []porcupine.Operation
	for _, s := range []linSend{p.sends[a], p.sends[b]} {
		ops = append(ops, porcupine.Operation{ClientId: int(s.client), Call: s.call, Return: s.ret,
			Input: logInput{send: true, value: s.value, name: names[s.value]}, Output: logOutput{offset: off}})
	}
	for i := range p.polls {
		pl := &p.polls[i]
		for _, r := range pl.recs {
			if r.off == off {
				ops = append(ops, porcupine.Operation{ClientId: int(pl.client), Call: pl.call, Return: pl.ret, Input: logInput{},
					Output: logOutput{records: []linRecord{{offset: off, value: r.value, name: names[r.value]}}}})
				break
			}
		}
	}
	return ops
}
