package checker

import (
	"fmt"
	"sort"

	"github.com/kchaos/kchaos/history"
)

// KeyBuckets is how many buckets Series.UnseenByKeyBucket groups keys into (by key number
// modulo KeyBuckets, in order of first appearance); unkeyed records have a bucket of their
// own.
const KeyBuckets = 8

// seriesStep is the first sampling interval of Series: 100ms; it doubles whenever a series
// would pass maxSamples points.
const (
	seriesStep = int64(100e6)
	maxSamples = 2048
)

// knownGap coarsens when offsets became known to exist, for realtime lag: a new point at
// most every millisecond, so lag is overestimated by less than that.
const knownGap = int64(1e6)

// Series are what Jepsen's Kafka workload plots over time, sampled every Step nanoseconds
// (Times are the ends of the steps): acknowledged records no read has returned yet (unseen),
// by partition and by key bucket, and each consumer's realtime lag: at each poll, for every
// partition the consumer reads, how long ago the offset after the highest it has read became
// known to exist (acknowledged or read by anyone); the worst within each step, in
// nanoseconds, -1 for a step without polls. A consumer merely behind shows rising lag and
// unseen records that its later reads bring down; lost records stay unseen through the final
// drain (DrainStart to DrainEnd, -1 when the history has none: a fresh process assigned
// every partition of a topic at offset 0 after the last send was invoked).
type Series struct {
	Step  int64   `json:"step_ns"`
	Times []int64 `json:"times_ns"`
	// UnseenByPartition is keyed "topic/partition".
	UnseenByPartition map[string][]int64 `json:"unseen_by_partition"`
	// UnseenByKeyBucket is keyed "keys N mod 8" or "no key".
	UnseenByKeyBucket map[string][]int64 `json:"unseen_by_key_bucket"`
	// Lag is keyed "process N".
	Lag        map[string][]int64 `json:"lag_ns"`
	DrainStart int64              `json:"drain_start_ns"`
	DrainEnd   int64              `json:"drain_end_ns"`
}

// knownPoint says offsets up to off were known to exist at time t.
type knownPoint struct {
	t   int64
	off int64
}

// seriesState accumulates Series as the history streams by.
type seriesState struct {
	step, next   int64
	times        []int64
	unseenPart   []int64 // by partition id, current
	partSeries   [][]int64
	unseenKey    [KeyBuckets + 1]int64
	keySeries    [KeyBuckets + 1][]int64
	known        [][]knownPoint // by partition id
	lagNow       map[int32]int64
	lagSeries    map[int32][]int64
	lastSend     int64 // last send invoke
	drainProc    int32
	drainStart   int64
	drainEnd     int64
	seen         []bool              // by process: has had an event
	holdsByProcs map[int32][]partMax // partitions each process reads, and its highest offset
}

func newSeriesState() *seriesState {
	return &seriesState{step: seriesStep, next: seriesStep, lagNow: map[int32]int64{}, lagSeries: map[int32][]int64{},
		lastSend: -1, drainProc: -1, drainStart: -1, drainEnd: -1, holdsByProcs: map[int32][]partMax{}}
}

func keyBucket(key int32) int {
	if key < 0 {
		return KeyBuckets
	}
	return int(key % KeyBuckets)
}

// advance closes every step that ended before t.
func (s *seriesState) advance(t int64, nparts int) {
	for t >= s.next {
		s.times = append(s.times, s.next)
		for len(s.partSeries) < nparts {
			s.partSeries = append(s.partSeries, make([]int64, len(s.times)-1))
		}
		for len(s.unseenPart) < nparts {
			s.unseenPart = append(s.unseenPart, 0)
		}
		for i := range s.partSeries {
			s.partSeries[i] = append(s.partSeries[i], s.unseenPart[i])
		}
		for i := range s.keySeries {
			s.keySeries[i] = append(s.keySeries[i], s.unseenKey[i])
		}
		for p, ser := range s.lagSeries {
			v, ok := s.lagNow[p]
			if !ok {
				v = -1
			}
			s.lagSeries[p] = append(ser, v)
		}
		clear(s.lagNow)
		s.next += s.step
		if len(s.times) >= maxSamples {
			s.thin()
		}
	}
}

// thin halves the samples: every other time, unseen counts, and the worse lag of each pair.
func (s *seriesState) thin() {
	half := func(xs []int64, worst bool) []int64 {
		out := xs[:0]
		for i := 1; i < len(xs); i += 2 {
			v := xs[i]
			if worst {
				v = max(v, xs[i-1])
			}
			out = append(out, v)
		}
		return out
	}
	s.times = half(s.times, false)
	for i := range s.partSeries {
		s.partSeries[i] = half(s.partSeries[i], false)
	}
	for i := range s.keySeries {
		s.keySeries[i] = half(s.keySeries[i], false)
	}
	for p := range s.lagSeries {
		s.lagSeries[p] = half(s.lagSeries[p], true)
	}
	s.step *= 2
	s.next = s.times[len(s.times)-1] + s.step
}

// noteKnown records that offsets up to off of partition pid exist, as of time t.
func (s *seriesState) noteKnown(pid int32, off, t int64) {
	for int(pid) >= len(s.known) {
		s.known = append(s.known, nil)
	}
	k := s.known[pid]
	n := len(k)
	switch {
	case n > 0 && k[n-1].off >= off:
	case n > 0 && t-k[n-1].t < knownGap:
		k[n-1].off = off
	default:
		s.known[pid] = append(k, knownPoint{t, off})
	}
}

// expired returns when offset off of partition pid was first known to exist, or -1.
func (s *seriesState) expired(pid int32, off int64) int64 {
	if int(pid) >= len(s.known) {
		return -1
	}
	k := s.known[pid]
	i := sort.Search(len(k), func(i int) bool { return k[i].off >= off })
	if i == len(k) {
		return -1
	}
	return k[i].t
}

// pollLag records a poll's realtime lag: proc invoked it at call and it read up to the
// offsets in reads.
func (s *seriesState) pollLag(proc int32, call int64, reads []partMax) {
	held := s.holdsByProcs[proc]
	for _, r := range reads {
		found := false
		for i := range held {
			if held[i].part == r.part {
				held[i].off, found = max(held[i].off, r.off), true
			}
		}
		if !found {
			held = append(held, r)
		}
	}
	s.holdsByProcs[proc] = held
	if proc == s.drainProc || len(held) == 0 {
		return
	}
	lag := int64(0)
	for _, h := range held {
		if at := s.expired(h.part, h.off+1); at >= 0 && at < call {
			lag = max(lag, call-at)
		}
	}
	if _, ok := s.lagSeries[proc]; !ok {
		s.lagSeries[proc] = make([]int64, len(s.times))
		for i := range s.lagSeries[proc] {
			s.lagSeries[proc][i] = -1
		}
	}
	if v, ok := s.lagNow[proc]; !ok || lag > v {
		s.lagNow[proc] = lag
	}
}

// fresh reports whether proc has had no event before, and marks it seen.
func (s *seriesState) fresh(proc int32) bool {
	if proc < 0 || proc >= 1<<16 {
		return false
	}
	for int(proc) >= len(s.seen) {
		s.seen = append(s.seen, false)
	}
	f := !s.seen[proc]
	s.seen[proc] = true
	return f
}

// assign resets what proc reads; a fresh process assigned partitions at offset 0 after the
// last send was invoked starts the final drain.
func (s *seriesState) assign(proc int32, t int64, offs []history.PartitionOffset, fresh bool) {
	delete(s.holdsByProcs, proc)
	if !fresh || s.lastSend < 0 || t < s.lastSend || len(offs) == 0 {
		return
	}
	for _, o := range offs {
		if o.Offset != 0 {
			return
		}
	}
	if s.drainProc != proc {
		s.drainProc, s.drainStart, s.drainEnd = proc, t, t
		delete(s.lagSeries, proc)
	}
}

// result builds the Series; parts names the partition ids.
func (s *seriesState) result(parts []*part) *Series {
	out := &Series{Step: s.step, Times: s.times, UnseenByPartition: map[string][]int64{}, UnseenByKeyBucket: map[string][]int64{},
		Lag: map[string][]int64{}, DrainStart: s.drainStart, DrainEnd: s.drainEnd}
	for i, ser := range s.partSeries {
		if i < len(parts) && anyNonZero(ser) {
			out.UnseenByPartition[fmt.Sprintf("%s/%d", parts[i].topic, parts[i].partition)] = ser
		}
	}
	for i, ser := range s.keySeries {
		if !anyNonZero(ser) {
			continue
		}
		name := "no key"
		if i < KeyBuckets {
			name = fmt.Sprintf("keys %d mod %d", i, KeyBuckets)
		}
		out.UnseenByKeyBucket[name] = ser
	}
	for p, ser := range s.lagSeries {
		out.Lag[fmt.Sprintf("process %d", p)] = ser
	}
	return out
}

func anyNonZero(xs []int64) bool {
	for _, x := range xs {
		if x != 0 {
			return true
		}
	}
	return false
}
