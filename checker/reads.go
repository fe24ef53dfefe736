package checker

import (
	"fmt"
	"strings"

	"github.com/kchaos/kchaos/history"
)

// poll handles one ok poll: offsets and values for the offset index, first reads and
// duplicates per value, and the read session of (process, partition) for skips and backward
// reads.
func (c *checker) poll(e *history.Event) {
	c.stats.Polls++
	proc := int32(e.Process)
	ps := c.procOf(proc)
	call := ps.pollCall
	if call < 0 {
		call = e.Time
	}
	ps.pollCall = -1
	var node *pollNode
	if c.graphOn() && len(e.Records) > 0 {
		c.pollNodes = append(c.pollNodes, pollNode{proc: proc, call: call, ret: e.Time})
		node = &c.pollNodes[len(c.pollNodes)-1]
		ps.lastPoll = call
	}
	var k sessKey
	var s *session
	reads := c.scratch[:0]
	for _, r := range e.Records {
		c.stats.RecordsRead++
		pid := c.partID(e.Topic, r.Partition)
		id := c.valueID(r.Value)
		c.associate(pid, r.Offset, id, e.Time, e.Process)
		v := c.vals.at(id)
		if proc == c.series.drainProc {
			v.flags |= flDrained
			c.noteDrained(pid, r.Offset)
		}
		c.noteOrder(proc, v)
		c.series.noteKnown(pid, r.Offset, e.Time)
		reads = notePartMax(reads, pid, r.Offset)
		if v.flags&flUnseen != 0 && v.readPart < 0 {
			s := c.series
			s.unseenPart[v.ackPart]--
			s.unseenKey[keyBucket(v.key)]--
		}
		switch {
		case v.readOffset < 0 && v.readPart < 0:
			v.readOffset, v.readPart, v.firstRead = r.Offset, pid, e.Time
		case (v.readPart != pid || v.readOffset != r.Offset) && v.flags&flDuplicate == 0:
			v.flags |= flDuplicate
			first, firstPart := v.readOffset, c.parts[v.readPart]
			// The second write came from the send: its retry overlapped the fault.
			c.an.add(Duplicate, min(max(v.invoke, 0), v.firstRead), e.Time, func() Example {
				p := c.parts[pid]
				return Example{Value: strings.Clone(r.Value), Topic: p.topic, Partition: p.partition, Offsets: []int64{first, r.Offset},
					Start: v.firstRead, End: e.Time, Process: e.Process,
					Detail: fmt.Sprintf("read at %s/%d offset %d and at %s/%d offset %d", firstPart.topic, firstPart.partition, first, p.topic, p.partition, r.Offset)}
			})
		}
		if pid == v.ackPart && r.Offset == v.ackOffset {
			v.flags |= flReadAtAck
		}
		if ps.openTxn >= 0 && v.txn == ps.openTxn {
			c.reportPrecommitted(id, pid, r.Offset, e.Time, "read by its own process while the transaction was open")
		}
		if s == nil || k.part != pid {
			k = sessKey{proc, pid}
			s = c.sessions[k]
			if s == nil {
				s = &session{low: -1, last: -1, hi: -1, lastPoll: -1}
				c.sessions[k] = s
			}
		}
		c.advance(s, pid, r.Offset, proc, e.Time, e.Index)
	}
	c.series.pollLag(proc, call, reads)
	if node != nil {
		node.reads = append([]partMax(nil), reads...)
	}
	c.scratch = reads
}

// noteDrained raises the highest offset the final drain read on partition pid.
func (c *checker) noteDrained(pid int32, off int64) {
	for int(pid) >= len(c.drainHi) {
		c.drainHi = append(c.drainHi, -1)
	}
	c.drainHi[pid] = max(c.drainHi[pid], off)
}

// drained reports whether the final drain read partition pid up to offset off or past it.
func (c *checker) drained(pid int32, off int64) bool {
	return pid >= 0 && int(pid) < len(c.drainHi) && c.drainHi[pid] >= off
}

// noteOrder counts a read out of send order: a record that consumer proc reads after a
// record of the same ordering scope that was sent later (Stats.ReadInversions). The scope
// is the producer session, and the key when the record has one; the final drain is left out.
func (c *checker) noteOrder(proc int32, v *value) {
	if v.session < 0 || v.invoke < 0 || proc == c.series.drainProc {
		return
	}
	m := c.order[proc]
	if m == nil {
		if c.order == nil {
			c.order = map[int32]map[[2]int32]int64{}
		}
		m = map[[2]int32]int64{}
		c.order[proc] = m
	}
	k := [2]int32{v.key, v.session}
	last, ok := m[k]
	switch {
	case ok && v.invoke < last:
		c.stats.ReadInversions++
	case !ok || v.invoke > last:
		m[k] = v.invoke
	}
}

// notePartMax raises the highest offset of partition pid in reads.
func notePartMax(reads []partMax, pid int32, off int64) []partMax {
	for i := range reads {
		if reads[i].part == pid {
			reads[i].off = max(reads[i].off, off)
			return reads
		}
	}
	return append(reads, partMax{pid, off})
}

// advance moves a read session to offset off, read by the poll at event index poll,
// reporting backward reads and noting gaps.
func (c *checker) advance(s *session, pid int32, off int64, proc int32, t, poll int64) {
	within := s.lastPoll == poll
	if s.hasLast {
		switch {
		case off <= s.last:
			prev, prevTime := s.last, s.lastTime
			name := NonmonotonicPoll
			if within {
				name = IntNonmonotonicPoll
			}
			c.an.add(name, prevTime, t, func() Example {
				p := c.parts[pid]
				id := p.log.get(off)
				ex := Example{Topic: p.topic, Partition: p.partition, Offsets: []int64{prev, off}, Start: prevTime, End: t, Process: int(proc),
					Detail: fmt.Sprintf("read offset %d after %d", off, prev)}
				if id >= 0 {
					ex.Value = c.vals.name(id)
				}
				return ex
			})
		case off > s.last+1:
			c.gaps = append(c.gaps, gap{part: pid, from: s.last, to: off, proc: proc, start: s.lastTime, end: t, within: within})
		}
	}
	s.lastPoll = poll
	if s.low < 0 || off < s.low {
		s.low = off
	}
	s.hi = max(s.hi, off)
	s.last, s.hasLast, s.read, s.lastTime = off, true, true, t
}

// endSession closes a read session, adding the range it covered to its partition.
func (c *checker) endSession(k sessKey, s *session) {
	if s.read {
		p := c.parts[k.part]
		p.coverage = append(p.coverage, interval{s.low, s.hi})
	}
	delete(c.sessions, k)
}

// reposition handles assign and seek: they end the read sessions they affect, and start new
// ones at the positions they name. An assign ends every session of the process (a new
// assignment); a seek only those of the partitions it names.
func (c *checker) reposition(e *history.Event) {
	proc := int32(e.Process)
	if e.F == history.FAssign {
		for k, s := range c.sessions {
			if k.proc == proc {
				c.endSession(k, s)
			}
		}
	}
	for _, po := range e.Offsets {
		k := sessKey{proc, c.partID(e.Topic, po.Partition)}
		if s := c.sessions[k]; s != nil {
			c.endSession(k, s)
		}
		if po.Offset >= 0 {
			c.sessions[k] = &session{low: po.Offset, last: po.Offset - 1, hi: po.Offset - 1, hasLast: true, lastTime: e.Time, lastPoll: -1}
		}
	}
}

// process counts FProcess reports per offset and reports offsets processed twice.
func (c *checker) process(e *history.Event) {
	for _, r := range e.Records {
		c.stats.Processed++
		pid := c.partID(e.Topic, r.Partition)
		p := c.parts[pid]
		if p.markProcessed(r.Offset) == 2 {
			c.an.add(ProcessedTwice, e.Time, e.Time, func() Example {
				return Example{Value: strings.Clone(r.Value), Topic: p.topic, Partition: p.partition, Offsets: []int64{r.Offset},
					Start: e.Time, End: e.Time, Process: e.Process, Detail: "second processing of this offset"}
			})
		}
	}
}
