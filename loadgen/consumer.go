package loadgen

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
)

// consumerTask is one consumer process in one subscription (group) of one topic.
type consumerTask struct {
	r        *runner
	drv      Driver
	settings ConsumerSettings
	proc     int
	topic    string
	group    string
	client   Consumer
	rec      *recorder
	pos      *positions
	debt     time.Duration // processing time owed but not yet slept
	faults   chan ConsumerFault
	// lagOnProcess advances pos when records are processed rather than polled (transformers:
	// a poll whose transaction aborts is read again).
	lagOnProcess bool
	// pending is a fault that arrived while records were being processed, for the poll
	// loop to act on.
	pending *ConsumerFault
}

// Consumer fault kinds.
const (
	// FaultCrash kills a consumer without finishing or committing what it polled; it
	// restarts with fresh state after For (never when For < 0).
	FaultCrash = "crash"
	// FaultStall stops a consumer from polling for For, as a stuck processing loop does.
	// Past max.poll.interval.ms a group member leaves its group, as Kafka's Java client does,
	// and rejoins with a new client when the stall ends.
	FaultStall = "stall"
)

// ConsumerFault is a fault injected into one consumer process, for the chaos controller.
type ConsumerFault struct {
	// Consumer is the consumer's index (0 for the first consumer of the run); its history
	// process number is producers + Consumer.
	Consumer int
	// Kind is FaultCrash or FaultStall.
	Kind string
	// For is the restart delay (crash) or stall length.
	For time.Duration
}

// run runs sessions of the consumer until ctx ends; a crash (or a stall past
// max.poll.interval.ms) ends a session and, after the fault's delay (what is left of the
// stall), starts a new one with a fresh client under the same process number.
func (c *consumerTask) run(ctx context.Context) {
	c.r.runSessions(ctx, "consumer", c.proc, c.session, func() error {
		cl, err := c.drv.NewConsumer(c.settings)
		if err == nil {
			c.client, c.debt = cl, 0
		}
		return err
	})
}

// runSessions runs session until ctx ends. After a crash fault it waits for the fault's
// delay (a negative delay: no restart), calls restart for a fresh client and runs the next
// session; a failed restart is counted and logged, and ends the process.
func (r *runner) runSessions(ctx context.Context, what string, proc int, session func(context.Context) (ConsumerFault, bool), restart func() error) {
	for {
		f, crashed := session(ctx)
		if !crashed || f.For < 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.For):
		}
		if err := restart(); err != nil {
			r.counts.addError(ErrorName(err))
			r.log.Warn("loadgen: "+what+" restart failed", "process", proc, "err", err)
			return
		}
	}
}

// positions tracks, per partition, the next offset a group will read, for lag.
type positions struct {
	mu   sync.Mutex // guards next
	next map[int32]int64
}

func (p *positions) advance(recs []history.Record) {
	p.mu.Lock()
	for _, r := range recs {
		if r.Offset+1 > p.next[r.Partition] {
			p.next[r.Partition] = r.Offset + 1
		}
	}
	p.mu.Unlock()
}

// lag returns the records between end offsets and the group's positions.
func (p *positions) lag(end map[int32]int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for part, e := range end {
		if d := e - p.next[part]; d > 0 {
			n += d
		}
	}
	return n
}

// session polls and processes until ctx ends, then finishes processing and commits, or
// until a crash fault (or a stall past max.poll.interval.ms), which abandons everything and
// reports the fault.
func (c *consumerTask) session(ctx context.Context) (crash ConsumerFault, crashed bool) {
	r := c.r
	cc := &r.cfg.Consumer
	if c.group != "" && cc.Mode != workloads.ModeAssign {
		r.hist(&history.Event{Process: c.proc, Type: history.OK, F: history.FSubscribe, Topic: c.topic, Partition: -1, Offset: -1, Group: c.membership()})
	}
	var (
		batch    []history.Record
		deadline time.Time
		work     chan history.Record
		workers  sync.WaitGroup
		tracker  = newOffsetTracker()
		nextSync = time.Now().Add(time.Duration(cc.CommitInterval))
	)
	var dead atomic.Bool // set on crash: workers drop what they have not processed
	if cc.Mode == workloads.ModeAsync {
		work = make(chan history.Record, cc.Workers*64)
		for range cc.Workers {
			workers.Add(1)
			go func() {
				defer workers.Done()
				var debt time.Duration
				for rec := range work {
					if dead.Load() {
						continue
					}
					debt = sleepOwed(debt + time.Duration(cc.ProcessingTime+cc.ProcessingOverhead))
					r.hist(&history.Event{Process: c.proc, Type: history.OK, F: history.FProcess, Topic: c.topic, Partition: -1, Offset: -1, Records: []history.Record{rec}})
					r.counts.processed.Add(1)
					tracker.complete(rec.Partition, rec.Offset)
				}
			}()
		}
	}
	for ctx.Err() == nil {
		faults := c.faults
		if c.pending != nil {
			pending := make(chan ConsumerFault, 1)
			pending <- *c.pending
			faults, c.pending = pending, nil
		}
		select {
		case f := <-faults:
			if f.Kind == FaultCrash {
				dead.Store(true)
				r.hist(&history.Event{Process: c.proc, Type: history.Info, F: history.FCrash, Topic: c.topic, Partition: -1, Offset: -1})
				if work != nil {
					close(work)
					workers.Wait()
				}
				c.client.Close()
				return f, true
			}
			if mpi := time.Duration(cc.MaxPollInterval); c.membership() != nil && f.For > mpi {
				// Kafka's Java client leaves its group once it has not polled for
				// max.poll.interval.ms (a static member stops heartbeating, and the
				// coordinator removes it after the session timeout); it rejoins with a
				// new client when it polls again. What it polled and did not process is
				// dropped: the partitions' new owners read it from the committed offsets.
				select {
				case <-time.After(mpi):
				case <-ctx.Done():
					continue
				}
				dead.Store(true)
				if work != nil {
					close(work)
					workers.Wait()
				}
				c.client.Close()
				return ConsumerFault{Kind: FaultStall, For: f.For - mpi}, true
			}
			select {
			case <-time.After(f.For):
			case <-ctx.Done():
			}
			continue
		default:
		}
		if !r.backlogReached() {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		wait := 100 * time.Millisecond
		if len(batch) > 0 {
			wait = max(time.Millisecond, min(wait, time.Until(deadline)))
		}
		polled, err := c.client.Poll(ctx, wait)
		if err != nil {
			if ctx.Err() == nil {
				r.counts.addError(ErrorName(err))
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		r.notePoll(c.proc, c.topic, c.membership(), polled)
		recs := c.recordPoll(polled.Records)
		if len(recs) > 0 && cc.Commit == workloads.CommitBeforeProcessing {
			c.commit(nextOffsets(recs))
		}
		switch cc.Mode {
		case workloads.ModeAsync:
			for _, rec := range recs {
				tracker.add(rec.Partition, rec.Offset)
				select {
				case work <- rec:
				case <-ctx.Done():
				}
			}
			if cc.Commit == workloads.CommitAfterProcessing && !time.Now().Before(nextSync) {
				c.commit(tracker.take())
				nextSync = time.Now().Add(time.Duration(cc.CommitInterval))
			}
		case workloads.ModeBatch:
			if len(batch) == 0 && len(recs) > 0 {
				deadline = time.Now().Add(time.Duration(cc.BatchTimeout))
			}
			batch = append(batch, recs...)
			for len(batch) >= cc.BatchSize && c.process(batch[:cc.BatchSize]) {
				batch = slices.Clone(batch[cc.BatchSize:])
				deadline = time.Now().Add(time.Duration(cc.BatchTimeout))
			}
			if len(batch) > 0 && !time.Now().Before(deadline) && c.process(batch) {
				batch = nil
			}
		default:
			if len(recs) > 0 {
				c.process(recs)
			}
		}
	}
	// Finish what was polled, then commit it, as a clean shutdown does.
	if len(batch) > 0 {
		c.process(batch)
	}
	if work != nil {
		close(work)
		workers.Wait()
		if cc.Commit == workloads.CommitAfterProcessing {
			c.commit(tracker.take())
		}
	}
	c.client.Close()
	return ConsumerFault{}, false
}

// recordPoll writes the poll to the history, records end-to-end latency and returns the
// records in history form.
func (c *consumerTask) recordPoll(fs []Fetched) []history.Record {
	if len(fs) == 0 {
		return nil
	}
	r := c.r
	now := time.Now()
	recs := make([]history.Record, len(fs))
	for i, f := range fs {
		recs[i] = history.Record{Partition: f.Partition, Offset: f.Offset}
		if h, v, err := HistoryValue(f.Value); err == nil {
			recs[i].Value = v
			if h.RunID == r.runID && h.IntendedUnixNano >= r.measureFrom.UnixNano() {
				c.rec.record(kindEndToEnd, now.Sub(time.Unix(0, h.IntendedUnixNano)))
			}
		}
	}
	r.hist(&history.Event{Process: c.proc, Type: history.OK, F: history.FPoll, Topic: c.topic, Partition: -1, Offset: -1, Records: recs})
	r.counts.polled.Add(int64(len(recs)))
	if !c.lagOnProcess {
		c.pos.advance(recs)
	}
	return recs
}

// process spends the processing time on recs, records them processed and commits after
// processing when configured. Mode batch makes one processing call for recs, the other
// modes one per record (workloads.ConsumerConfig.ProcessingOverhead). A crash fault that
// arrives meanwhile stops it as a killed process stops: the records of the calls that
// finished are processed, the rest are not, nothing is committed; it reports false and
// leaves the fault to the poll loop (c.pending).
func (c *consumerTask) process(recs []history.Record) bool {
	r := c.r
	cc := &r.cfg.Consumer
	perCall, calls := 1, len(recs)
	if cc.Mode == workloads.ModeBatch {
		perCall, calls = len(recs), 1
	}
	done := 0
	for range calls {
		c.debt = sleepOwed(c.debt + time.Duration(perCall)*time.Duration(cc.ProcessingTime) + time.Duration(cc.ProcessingOverhead))
		if c.pending == nil {
			select {
			case f := <-c.faults:
				c.pending = &f
			default:
			}
		}
		if c.pending != nil && c.pending.Kind == FaultCrash {
			break
		}
		done += perCall
	}
	if done > 0 {
		r.hist(&history.Event{Process: c.proc, Type: history.OK, F: history.FProcess, Topic: c.topic, Partition: -1, Offset: -1, Records: recs[:done]})
		r.counts.processed.Add(int64(done))
	}
	if done < len(recs) {
		return false
	}
	if r.cfg.Consumer.Commit == workloads.CommitAfterProcessing {
		c.commit(nextOffsets(recs))
	}
	return true
}

// commit commits offsets and records the outcome: ok, fail for a Kafka error (the broker
// refused it), info for anything else (timeouts, lost connections).
func (c *consumerTask) commit(offsets map[int32]int64) {
	if len(offsets) == 0 {
		return
	}
	r := c.r
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := c.client.Commit(ctx, offsets)
	cancel()
	e := &history.Event{Process: c.proc, Type: history.OK, F: history.FCommit, Topic: c.topic, Partition: -1, Offset: -1}
	for _, p := range slices.Sorted(mapKeys(offsets)) {
		e.Offsets = append(e.Offsets, history.PartitionOffset{Partition: p, Offset: offsets[p]})
	}
	if err != nil {
		e.Error = ErrorName(err)
		e.Type = history.Info
		if IsKafkaError(err) {
			e.Type = history.Fail
		}
		r.counts.addError(e.Error)
	}
	r.counts.commits.Add(1)
	r.hist(e)
}

func mapKeys(m map[int32]int64) func(func(int32) bool) {
	return func(yield func(int32) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// nextOffsets returns, per partition, one past the highest offset in recs.
func nextOffsets(recs []history.Record) map[int32]int64 {
	m := map[int32]int64{}
	for _, r := range recs {
		if r.Offset+1 > m[r.Partition] {
			m[r.Partition] = r.Offset + 1
		}
	}
	return m
}

// sleepOwed sleeps off owed processing time once it reaches a millisecond (shorter sleeps
// are not precise) and returns what is still owed.
func sleepOwed(owed time.Duration) time.Duration {
	if owed < time.Millisecond {
		return owed
	}
	t0 := time.Now()
	time.Sleep(owed)
	return owed - time.Since(t0)
}

// offsetTracker finds, per partition, the highest offset below which every polled record
// has been processed: what async mode may commit.
type offsetTracker struct {
	mu        sync.Mutex // guards parts
	parts     map[int32]*partTrack
	committed map[int32]int64
}

type partTrack struct {
	pending []int64
	done    map[int64]bool
	next    int64
}

func newOffsetTracker() *offsetTracker {
	return &offsetTracker{parts: map[int32]*partTrack{}, committed: map[int32]int64{}}
}

func (t *offsetTracker) add(p int32, off int64) {
	t.mu.Lock()
	pt := t.parts[p]
	if pt == nil {
		pt = &partTrack{done: map[int64]bool{}, next: -1}
		t.parts[p] = pt
	}
	pt.pending = append(pt.pending, off)
	t.mu.Unlock()
}

func (t *offsetTracker) complete(p int32, off int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pt := t.parts[p]
	pt.done[off] = true
	for len(pt.pending) > 0 && pt.done[pt.pending[0]] {
		delete(pt.done, pt.pending[0])
		pt.next = pt.pending[0] + 1
		pt.pending = pt.pending[1:]
	}
}

// take returns positions that advanced since the last take.
func (t *offsetTracker) take() map[int32]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int32]int64{}
	for p, pt := range t.parts {
		if pt.next >= 0 && pt.next > t.committed[p] {
			out[p] = pt.next
			t.committed[p] = pt.next
		}
	}
	return out
}

// membership is the consumer's group as history events name it, nil outside a group
// (assign mode).
func (c *consumerTask) membership() *history.Membership {
	if c.group == "" || c.settings.Partitions != nil {
		return nil
	}
	return &history.Membership{ID: c.group, Generation: -1, Instance: c.settings.InstanceID}
}

// notePoll records what a poll of consumer proc says besides its records: a new assignment
// (an FAssign event, with the generation it came with in group m) and fetch errors
// (counted).
func (r *runner) notePoll(proc int, topic string, m *history.Membership, polled Polled) {
	if polled.AssignmentChanged {
		offs := make([]history.PartitionOffset, 0, len(polled.Assignment))
		for _, p := range polled.Assignment {
			offs = append(offs, history.PartitionOffset{Partition: p, Offset: -1})
		}
		if m != nil {
			m.Generation, m.Member = polled.Generation, polled.Member
			if m.Generation == 0 {
				m.Generation = -1
			}
		}
		r.hist(&history.Event{Process: proc, Type: history.OK, F: history.FAssign, Topic: topic, Partition: -1, Offset: -1, Offsets: offs, Group: m})
	}
	for _, e := range polled.Errors {
		r.counts.addError(e)
		r.counts.pollErrors.Add(1)
	}
}
