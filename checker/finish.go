package checker

import (
	"fmt"
	"sync"
)

// finish runs the analyses that need the whole history and assembles the Result.
func (c *checker) finish() *Result {
	for k, s := range c.sessions {
		c.endSession(k, s)
	}
	for _, p := range c.parts {
		p.mergeCoverage()
		p.log.freeze()
	}
	for i := range c.faults {
		if c.faults[i].Open {
			c.faults[i].End = c.end
		}
	}
	tf := c.transformOutputs()
	// The six analyses read the shared state and each adds to its own anomalies only.
	var wg sync.WaitGroup
	var gr *GraphResult
	var g *depGraph
	graph := func() { gr, g = c.graphAnalyses() }
	for _, f := range []func(){c.valueAnalyses, c.reorders, c.pollSkips, c.committedUnprocessed, func() { c.exactlyOnceOutputs(tf) }, graph} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
	if g != nil {
		for _, id := range g.precommitted {
			v := c.vals.at(id)
			pid, off := v.readPart, v.readOffset
			if pid < 0 {
				pid, off = v.ackPart, v.ackOffset
			}
			if pid >= 0 {
				c.reportPrecommitted(id, pid, off, v.firstRead, "was the input of an output the same transaction sent")
			}
		}
	}
	c.an.attachFaults(c.faults)
	c.an.attribute(c.faults)
	c.an.sortExamples()
	c.stats.Partitions = len(c.parts)
	c.series.advance(c.end+c.series.step, len(c.parts))
	res := &Result{Run: c.run, Events: c.events, End: c.end, Stats: c.stats, Anomalies: c.an, Faults: c.faults, Graph: gr,
		Series: c.series.result(c.parts), Groups: c.groupStats()}
	Judge(res)
	return res
}

func (c *checker) readCommitted() bool {
	return c.run != nil && c.run.IsolationLevel == "read_committed"
}

// txnAborted reports whether value v belongs to an aborted transaction.
func (c *checker) txnAborted(v *value) bool { return v.txn >= 0 && c.txns[v.txn].aborted }

// exists reports whether the offset holding value id is known to exist in the log: a read
// saw it, or it was acknowledged and its transaction, if any, committed.
func (c *checker) exists(id int32) bool {
	v := c.vals.at(id)
	if v.readPart >= 0 {
		return true
	}
	return v.status == stOK && (v.txn < 0 || c.txns[v.txn].committed)
}

// passed reports whether reads went past the acknowledged offset of v: a read session covered
// it. With acks=0 the acknowledgement carries no offset (-1); then any read session on a
// partition of the same topic counts, as the final drain reads every partition to its end.
func (c *checker) passed(v *value) bool {
	p := c.parts[v.ackPart]
	if v.ackOffset >= 0 {
		return p.covered(v.ackOffset)
	}
	for _, q := range c.parts {
		if q.topic == p.topic && len(q.coverage) > 0 {
			return true
		}
	}
	return false
}

// valueAnalyses walks every value once, in invoke order: lost and unseen, values read away
// from their acknowledged offset, aborted and uncommitted reads, nonmonotonic sends.
func (c *checker) valueAnalyses() {
	// lastAck is the highest ack offset so far per (producer session, partition), + 1.
	lastAck := newPairTable(len(c.sessIDs), len(c.parts))
	txnLast := &txnCursors{nparts: len(c.parts), byProc: map[int32]*txnCursor{}}
	rc := c.readCommitted()
	acks0 := c.run != nil && c.run.Acks == "0"
	anyRead := c.stats.RecordsRead > 0
	for i := range c.vals.len() {
		id := int32(i)
		v := c.vals.at(id)
		read := v.readPart >= 0
		if v.status == stInvoked {
			c.stats.SendsPending++
		}
		if v.status == stInfo && !read && acks0 && anyRead {
			c.stats.UnacknowledgedUnread++
		}
		if v.status == stOK {
			p := c.parts[v.ackPart]
			switch {
			case !read && v.txn >= 0 && !c.txns[v.txn].committed:
				// A record of an aborted or undecided transaction is not expected to be read.
			case !read && c.passed(v):
				// A loss happens after the acknowledgement, by whatever came after it
				// (a power loss drops everything since the last fsync).
				c.an.add(Lost, v.invoke, c.end, func() Example {
					return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{v.ackOffset},
						Start: v.invoke, End: v.done, Process: int(v.proc), Detail: "acknowledged, never read, reads covered its offset"}
				})
			case !read:
				c.an.add(Unseen, v.invoke, v.done, func() Example {
					return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{v.ackOffset},
						Start: v.invoke, End: v.done, Process: int(v.proc), Detail: "acknowledged, no read reached its offset"}
				})
			case v.flags&flDrained == 0 && v.ackOffset >= 0 && c.drained(v.ackPart, v.ackOffset) && (v.txn < 0 || c.txns[v.txn].committed):
				c.an.add(LostAfterRead, v.invoke, c.end, func() Example {
					return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{v.ackOffset, v.readOffset},
						Start: v.invoke, End: v.firstRead, Process: int(v.proc), Detail: "acknowledged and read, then gone: the final drain read past its offset without it"}
				})
			case v.flags&flReadAtAck == 0 && !p.conflicts[v.ackOffset]:
				rp := c.parts[v.readPart]
				c.an.add(InconsistentOffsets, v.invoke, v.firstRead, func() Example {
					return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{v.ackOffset, v.readOffset},
						Start: v.invoke, End: v.firstRead, Process: int(v.proc),
						Detail: fmt.Sprintf("acknowledged at offset %d, read only elsewhere (first at %s/%d offset %d)", v.ackOffset, rp.topic, rp.partition, v.readOffset)}
				})
			}
			intNM := c.txnSendOrder(txnLast, id, v)
			last1 := lastAck.get(v.session, v.ackPart)
			last := last1 - 1
			switch {
			case intNM: // counted as IntNonmonotonicSend
			case last1 > 0 && v.ackOffset >= 0 && v.ackOffset < last:
				cause := CauseRetry
				if c.truncated(v.ackPart, last, -1) || c.truncated(v.ackPart, v.ackOffset, id) {
					cause = CauseTruncation
				}
				c.an.addCause(NonmonotonicSend, cause, v.invoke, v.done, func() Example {
					return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{last, v.ackOffset},
						Start: v.invoke, End: v.done, Process: int(v.proc),
						Detail: fmt.Sprintf("acknowledged at %d after an earlier send of the same producer at %d", v.ackOffset, last)}
				})
			default:
				lastAck.set(v.session, v.ackPart, v.ackOffset+1)
			}
		}
		if !read {
			continue
		}
		aborted := c.txnAborted(v)
		if v.status == stFail || aborted {
			rp := c.parts[v.readPart]
			why := "send failed"
			if aborted {
				why = fmt.Sprintf("transaction %d aborted", c.txns[v.txn].id)
			}
			c.an.add(AbortedRead, v.invoke, v.firstRead, func() Example {
				return Example{Value: c.vals.name(id), Topic: rp.topic, Partition: rp.partition, Offsets: []int64{v.readOffset},
					Start: v.invoke, End: v.firstRead, Process: int(v.proc), Detail: "read although " + why}
			})
			continue
		}
		if rc && v.txn >= 0 {
			t := &c.txns[v.txn]
			if t.commitInvoke < 0 || v.firstRead < t.commitInvoke {
				rp := c.parts[v.readPart]
				c.an.add(UncommittedRead, v.invoke, v.firstRead, func() Example {
					why := "transaction never committed"
					if t.commitInvoke >= 0 {
						why = fmt.Sprintf("read at t=%d before transaction %d's commit at t=%d", v.firstRead, t.id, t.commitInvoke)
					}
					return Example{Value: c.vals.name(id), Topic: rp.topic, Partition: rp.partition, Offsets: []int64{v.readOffset},
						Start: v.invoke, End: v.firstRead, Process: int(v.proc), Detail: why}
				})
			}
		}
	}
}

// truncated reports whether offset off of partition pid shows a truncated log: a read or
// an acknowledgement placed more than one value there, or the value there (id, or the one
// first placed there when id < 0) was acknowledged elsewhere, read elsewhere, or never read
// although it was acknowledged. Records of an intact log sit at the offsets they were
// acknowledged with.
func (c *checker) truncated(pid int32, off int64, id int32) bool {
	p := c.parts[pid]
	if off < 0 || p.conflicts[off] {
		return true
	}
	if id < 0 {
		if id = p.log.get(off); id < 0 {
			return false
		}
	}
	v := c.vals.at(id)
	switch {
	case v.status == stOK && v.readPart < 0:
		return true // acknowledged, never read: lost or not yet reached
	case v.status == stOK && (v.ackPart != pid || v.ackOffset != off) && v.flags&flReadAtAck == 0:
		return true
	}
	return false
}

// txnSendOrder compares a transactional send with its transaction's previous send to the
// same partition: IntNonmonotonicSend when it was acknowledged below it (the result is
// true), IntSendSkip when an existing offset of another writer lies between them.
func (c *checker) txnSendOrder(txnLast *txnCursors, id int32, v *value) bool {
	if v.txn < 0 || v.ackOffset < 0 {
		return false
	}
	p := c.parts[v.ackPart]
	cur := txnLast.of(v.proc, v.txn)
	prev1 := cur.last[v.ackPart]
	if prev := prev1 - 1; prev1 > 0 && v.ackOffset < prev {
		c.an.add(IntNonmonotonicSend, v.invoke, v.done, func() Example {
			return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{prev, v.ackOffset},
				Start: v.invoke, End: v.done, Process: int(v.proc),
				Detail: fmt.Sprintf("acknowledged at %d after transaction %d's previous send to the partition at %d", v.ackOffset, c.txns[v.txn].id, prev)}
		})
		return true
	} else if prev1 > 0 {
		other := int32(-1)
		p.log.scan(prev+1, v.ackOffset-1, func(_ int64, o int32) bool {
			if c.vals.at(o).txn != v.txn && c.exists(o) {
				other = o
			}
			return other < 0
		})
		if other >= 0 {
			c.an.add(IntSendSkip, v.invoke, v.done, func() Example {
				return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{prev, v.ackOffset},
					Start: v.invoke, End: v.done, Process: int(v.proc),
					Detail: fmt.Sprintf("transaction %d sent at %d then %d; %q lies between", c.txns[v.txn].id, prev, v.ackOffset, c.vals.name(other))}
			})
		}
	}
	cur.set(v.ackPart, v.ackOffset+1)
	return false
}

// txnCursors hold, per sending process, the offset of its transaction's previous send to each
// partition: a producer runs one transaction at a time and values come in invoke order, so
// the sends of one transaction are consecutive among its process's sends. Memory is
// processes × partitions, not transactions × partitions.
type txnCursors struct {
	nparts int
	byProc map[int32]*txnCursor
}

// txnCursor is one process's current transaction and, per partition id, the offset of its
// previous send there + 1 (0: none); touched lists the partitions to clear for the next.
type txnCursor struct {
	txn     int32
	last    []int64
	touched []int32
}

// of returns proc's cursor, reset when txn is not the transaction it followed.
func (t *txnCursors) of(proc, txn int32) *txnCursor {
	c := t.byProc[proc]
	if c == nil {
		c = &txnCursor{txn: -1, last: make([]int64, t.nparts)}
		t.byProc[proc] = c
	}
	if c.txn != txn {
		for _, p := range c.touched {
			c.last[p] = 0
		}
		c.txn, c.touched = txn, c.touched[:0]
	}
	return c
}

func (c *txnCursor) set(part int32, next int64) {
	if c.last[part] == 0 {
		c.touched = append(c.touched, part)
	}
	c.last[part] = next
}

// reorders walks each partition's log in offset order, checking per-key real-time and
// producer order (see Reorder).
func (c *checker) reorders() {
	type keyState struct {
		maxInvoke int64 // latest invoke time among earlier values of the key
		maxID     int32 // value holding maxInvoke
	}
	type sessMax struct{ session, maxID int32 }
	nkeys := len(c.keyIDs)
	keys := make([]keyState, nkeys)
	bySession := make([][]sessMax, nkeys) // per key: highest value id so far per producer session
	for pid, p := range c.parts {
		for i := range keys {
			keys[i] = keyState{maxInvoke: -1, maxID: -1}
			bySession[i] = bySession[i][:0]
		}
		p.log.scan(0, 1<<62, func(off int64, id int32) bool {
			v := c.vals.at(id)
			if v.key < 0 || v.readPart != int32(pid) || v.readOffset != off {
				return true
			}
			ks := &keys[v.key]
			ss := bySession[v.key]
			si := -1
			for i := range ss {
				if ss[i].session == v.session {
					si = i
					break
				}
			}
			var culprit int32 = -1
			why := ""
			switch {
			case v.status == stOK && ks.maxInvoke > v.done:
				culprit, why = ks.maxID, "invoked after this value was acknowledged, yet earlier in the log"
			case si >= 0 && v.session >= 0 && ss[si].maxID > id:
				culprit, why = ss[si].maxID, "sent later by the same producer, yet earlier in the log"
			}
			if culprit >= 0 {
				u := c.vals.at(culprit)
				cause := CauseRetry
				if c.truncated(int32(pid), u.readOffset, culprit) || c.truncated(int32(pid), off, id) {
					cause = CauseTruncation
				}
				c.an.addCause(Reorder, cause, min(v.invoke, u.invoke), max(v.done, u.done), func() Example {
					return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{u.readOffset, off},
						Start: min(v.invoke, u.invoke), End: max(v.done, u.done), Process: int(v.proc),
						Detail: fmt.Sprintf("%q (offset %d) %s", c.vals.name(culprit), u.readOffset, why)}
				})
			}
			if v.invoke > ks.maxInvoke {
				ks.maxInvoke, ks.maxID = v.invoke, id
			}
			switch {
			case si < 0:
				bySession[v.key] = append(ss, sessMax{v.session, id})
			case id > ss[si].maxID:
				ss[si].maxID = id
			}
			return true
		})
	}
}

// pollSkips decides the candidate gaps: a gap is a skip when an offset inside it exists.
func (c *checker) pollSkips() {
	for _, g := range c.gaps {
		p := c.parts[g.part]
		skipped, first := int64(0), int64(-1)
		var firstID int32
		p.log.scan(g.from+1, g.to-1, func(off int64, id int32) bool {
			if c.exists(id) {
				if first < 0 {
					first, firstID = off, id
				}
				skipped++
			}
			return true
		})
		if skipped == 0 {
			continue
		}
		name := PollSkip
		if g.within {
			name = IntPollSkip
		}
		c.an.add(name, g.start, g.end, func() Example {
			return Example{Value: c.vals.name(firstID), Topic: p.topic, Partition: p.partition, Offsets: []int64{g.from, g.to},
				Start: g.start, End: g.end, Process: int(g.proc),
				Detail: fmt.Sprintf("read offset %d then %d, skipping %d existing offsets (first %d)", g.from, g.to, skipped, first)}
		})
	}
}

// committedUnprocessed reports existing offsets committed past but never processed.
func (c *checker) committedUnprocessed() {
	for _, p := range c.parts {
		if p.processed == nil || p.maxCommitted <= p.lowProcessed {
			continue
		}
		p.log.scan(p.lowProcessed, p.maxCommitted-1, func(off int64, id int32) bool {
			if p.processedCount(off) == 0 && c.exists(id) {
				v := c.vals.at(id)
				c.an.add(CommittedUnprocessed, max(v.firstRead, v.done, 0), p.commitTime, func() Example {
					return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{off, p.maxCommitted},
						Start: max(v.firstRead, v.done, 0), End: p.commitTime, Process: int(p.commitProc),
						Detail: fmt.Sprintf("committed up to %d, offset %d never processed", p.maxCommitted, off)}
				})
			}
			return true
		})
	}
}

// pairTable maps (a, b) pairs of small non-negative ids to int64 (0 when unset): a flat slice
// when a×b is small, else a map.
type pairTable struct {
	nb   int
	flat []int64
	m    map[uint64]int64
}

// maxFlatPairs bounds the flat slice of a pairTable: 16M entries (128 MiB).
const maxFlatPairs = 1 << 24

func newPairTable(na, nb int) *pairTable {
	if na*nb <= maxFlatPairs {
		return &pairTable{nb: nb, flat: make([]int64, na*nb)}
	}
	return &pairTable{m: make(map[uint64]int64)}
}

func (t *pairTable) get(a, b int32) int64 {
	if a < 0 || b < 0 {
		return 0
	}
	if t.flat != nil {
		return t.flat[int(a)*t.nb+int(b)]
	}
	return t.m[uint64(a)<<32|uint64(b)]
}

func (t *pairTable) set(a, b int32, v int64) {
	if a < 0 || b < 0 {
		return
	}
	if t.flat != nil {
		t.flat[int(a)*t.nb+int(b)] = v
		return
	}
	t.m[uint64(a)<<32|uint64(b)] = v
}
