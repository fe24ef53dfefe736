package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kchaos/kchaos/history"
)

// producerTask is one producer process: it sends to one topic at its share of the rate.
type producerTask struct {
	r      *runner
	proc   int
	topic  string
	client Producer
	rate   float64 // records/s; 0: search for the maximum
	keys   *keyChooser
	// payloads are the bodies a value may carry after its header (makePayloads): none for
	// zeros, one for every record, or a pool a record picks from with payloadRng.
	payloads   [][]byte
	payloadRng *rand.Rand
	// rec holds the producer goroutine's publish delays, outRec the outcomes' publish
	// latencies: one recorder per side, so the two goroutines do not share a lock.
	rec, outRec *recorder

	// flight counts this producer's sends and outcomes (for the capacity search and finish).
	flight inflight
	ops    sync.Pool    // of *sendOp: see sendOp
	target atomic.Int64 // current scheduled rate, records/s, for the series
	// txn, when set, sends in transactions of cfg.Producer.TransactionSize records.
	txn    TxnProducer
	txnID  int64 // current transaction number (0: none open)
	txnN   int   // records sent in the open transaction
	txnRng *rand.Rand
	// invokes and outcomes are the history lanes of the producer's send invokes (its own
	// goroutine) and outcomes (the client's goroutines), when the run writes a history.
	invokes, outcomes *history.Lane
	// limit stops the producer after this many sends; 0: no limit.
	limit uint64
	// searchBest is the capacity the search found (records/s); set when run returns.
	searchBest float64
	// zeroDelays counts measured sends of a capacity search not yet in rec: a closed loop
	// sends each record at its intended time, so every publish delay is 0, and recording
	// them once per search step spares a lock and a histogram update per record.
	zeroDelays int64
}

// run sends until stop (wall clock), ctx ends or the run is halted, then waits for every
// outcome. At a fixed
// rate it paces sends (open loop: latency counts from the intended send time); at rate 0 it
// finds the capacity with a CapacitySearch, keeping at most the search's window of records in
// flight (closed loop).
func (p *producerTask) run(ctx context.Context, start, stop time.Time) {
	r := p.r
	// halt ends sending early (ctx, or the run's Options.Stop); sends keep ctx, so records
	// already handed to the client are not failed by it.
	halt := r.halt
	if halt == nil {
		halt = ctx
	}
	pacer := NewPacer(start, p.rate)
	var search *CapacitySearch
	const searchStep = 250 * time.Millisecond
	var nextStep time.Time
	var lastDone, window int64
	// credit is how many more records the window has room for, from the last look at the
	// outcomes: looking once per credit instead of per record keeps the sending goroutine
	// off the cache line that outcomes write (one miss per record on the outcome side and
	// one on this side, where the client's goroutines run on another core).
	var credit int64
	var stepTimer *time.Timer
	if p.rate == 0 {
		// A paced producer's first send is due at start; a closed loop must wait for it too,
		// or it sends before the run's clock and series begin, unmeasured.
		if !sleepUntil(halt, start) {
			p.finish(ctx)
			return
		}
		floor := p.windowFloor()
		search = NewCapacitySearch(floor, floor)
		window = search.Window()
		nextStep = start.Add(searchStep)
		p.flight.initRoom()
		stepTimer = time.NewTimer(searchStep)
		defer stepTimer.Stop()
	}
	p.target.Store(int64(pacer.Rate()))
	size := int(r.cfg.MessageSize)
	timer := time.NewTimer(0)
	<-timer.C
	hdr := Header{RunID: r.runID, ProducerID: uint32(p.proc)}
	for seq := uint64(0); ; seq++ {
		// One monotonic clock read; time.Now reads the wall clock too.
		now := start.Add(time.Since(start))
		var intended time.Time
		if search != nil {
			for {
				if !now.Before(nextStep) {
					d := p.flight.done.Load()
					p.flushDelays()
					window = search.Step(searchStep+now.Sub(nextStep), d-lastDone, p.flight.outstanding())
					lastDone = d
					nextStep = now.Add(searchStep)
					p.target.Store(int64(search.Capacity()))
					credit = 0
				}
				if !now.Before(stop) || halt.Err() != nil {
					break
				}
				if credit > 0 {
					break
				}
				if credit = window - p.flight.outstanding(); credit > 0 {
					break
				}
				wake := nextStep
				if stop.Before(wake) {
					wake = stop
				}
				stepTimer.Reset(wake.Sub(now))
				p.flight.waitRoom(halt, window, stepTimer)
				now = start.Add(time.Since(start))
			}
			intended = now
			credit--
		} else {
			var wait time.Duration
			intended, wait = pacer.Next(now)
			if wait > 0 {
				timer.Reset(wait)
				select {
				case <-halt.Done():
					timer.Stop()
					p.finish(ctx)
					return
				case now = <-timer.C:
				}
			}
		}
		if !now.Before(stop) || halt.Err() != nil || (p.limit > 0 && seq >= p.limit) {
			break
		}
		op := p.newOp(size)
		op.intended, op.seq = intended, seq
		hdr.Sequence, hdr.IntendedUnixNano = seq, intended.UnixNano()
		hdr.Put(op.msg.Value)
		if len(p.payloads) > 1 {
			copy(op.msg.Value[HeaderSize:], p.payloads[p.payloadRng.IntN(len(p.payloads))])
		}
		op.msg.Topic, op.msg.Key, op.msg.Timestamp = p.topic, p.keys.Next(), now
		if p.txn != nil && p.txnID == 0 && !p.beginTxn(ctx) {
			break
		}
		p.send(ctx, now, op)
		if p.txn != nil {
			if p.txnN++; p.txnN >= r.cfg.Producer.TransactionSize {
				p.endTxn(ctx)
			}
		}
	}
	if p.txn != nil && p.txnID != 0 {
		p.endTxn(ctx)
	}
	if search != nil {
		p.flushDelays()
		p.searchBest = search.Capacity()
	}
	p.finish(ctx)
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// flushDelays records the zero publish delays counted since the last flush.
func (p *producerTask) flushDelays() {
	if p.zeroDelays > 0 {
		p.rec.recordN(kindPublishDelay, 0, p.zeroDelays)
		p.zeroDelays = 0
	}
}

// windowFloor is the smallest window of the capacity search: enough records for every
// partition of the producer's topic to fill two batches (one in flight, one filling).
func (p *producerTask) windowFloor() float64 {
	size := max(1, int64(p.r.cfg.MessageSize))
	perBatch := max(1, int64(p.r.cfg.Producer.BatchSize)/size)
	return float64(2 * perBatch * int64(max(1, p.r.cfg.PartitionsPerTopic)))
}

// hist writes a send event through lane l, unless the run's history has stopped.
func (p *producerTask) hist(l *history.Lane, e *history.Event) {
	if l != nil && !p.r.histOff.Load() {
		_ = l.Write(e)
	}
}

// txnSeq numbers transactions across producers, so a TxnID is unique in the run.
var txnSeq atomic.Int64

// beginTxn opens a transaction and records it; false when it cannot (the producer stops).
func (p *producerTask) beginTxn(ctx context.Context) bool {
	r := p.r
	id := txnSeq.Add(1)
	txn := &history.Txn{Op: "begin", TransactionalID: p.txnIDName()}
	if err := p.txn.BeginTxn(); err != nil {
		r.counts.addError(ErrorName(err))
		r.hist(&history.Event{Process: p.proc, Type: history.Fail, F: history.FTxn, Partition: -1, Offset: -1, TxnID: id, Txn: txn, Error: ErrorName(err)})
		r.log.Warn("loadgen: begin transaction failed; producer stops", "process", p.proc, "err", err)
		return false
	}
	r.hist(&history.Event{Process: p.proc, Type: history.OK, F: history.FTxn, Partition: -1, Offset: -1, TxnID: id, Txn: txn})
	p.txnID, p.txnN = id, 0
	return ctx.Err() == nil
}

// endTxn commits the open transaction, or aborts it with probability AbortRatio, and
// records the outcome: ok, or info when the end failed (the outcome is unknown).
func (p *producerTask) endTxn(ctx context.Context) {
	r := p.r
	commit := p.txnRng.Float64() >= r.cfg.Producer.AbortRatio
	op := "commit"
	if !commit {
		op = "abort"
	}
	// The invoke comes first: readers may see a commit before the client hears of it.
	r.hist(&history.Event{Process: p.proc, Type: history.Invoke, F: history.FTxn, Partition: -1, Offset: -1, TxnID: p.txnID,
		Txn: &history.Txn{Op: op, TransactionalID: p.txnIDName()}})
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(r.cfg.Producer.DeliveryTimeout))
	err := p.txn.EndTxn(ectx, commit)
	cancel()
	e := &history.Event{Process: p.proc, Type: history.OK, F: history.FTxn, Partition: -1, Offset: -1, TxnID: p.txnID,
		Txn: &history.Txn{Op: op, TransactionalID: p.txnIDName()}}
	switch {
	case errors.Is(err, errTxnAborted):
		// The commit failed and the client aborted the transaction instead.
		e.Txn.Op, e.Error = "abort", ErrorName(err)
		r.counts.addError(e.Error)
	case err != nil:
		e.Type, e.Error = history.Info, ErrorName(err)
		r.counts.addError(e.Error)
	}
	r.hist(e)
	p.txnID = 0
}

func (p *producerTask) txnIDName() string {
	return fmt.Sprintf("kchaos-%s-p%d", p.r.runName, p.proc)
}

// finish waits for every outcome, but no longer than the delivery timeout (a client that
// never reports a record, as Sarama can after broker restarts with several requests in
// flight, must not hold the run forever) and not past ctx. Records left without an outcome
// stay pending in the history: indeterminate.
func (p *producerTask) finish(ctx context.Context) {
	if p.flight.waitFor(ctx, time.Duration(p.r.cfg.Producer.DeliveryTimeout)) {
		return
	}
	p.r.log.Warn("loadgen: producer gave up waiting for outcomes; they stay indeterminate", "process", p.proc,
		"outstanding", p.flight.outstanding(), "waited", time.Duration(p.r.cfg.Producer.DeliveryTimeout))
	p.r.counts.addError("NO_OUTCOME")
}

// sendOp is one record in flight: the message and what its outcome event needs. Once the
// client has reported the outcome it holds neither, so sendOps and their values are reused
// (producerTask.ops).
type sendOp struct {
	p        *producerTask
	msg      Message
	intended time.Time
	seq      uint64
	value    string // the history value, when the run writes a history; aliases valueBuf
	valueBuf [24]byte
	txnID    int64
	measured bool
}

// newOp returns a sendOp whose value has size bytes, reused when one is free. A new value
// gets the producer's only payload after the header (zeros when it has none); a reused one
// has it already, as clients do not write into a value (Producer.Send), so only its header
// is written again (and its body when the producer picks from a pool).
func (p *producerTask) newOp(size int) *sendOp {
	if op, ok := p.ops.Get().(*sendOp); ok && len(op.msg.Value) == size {
		return op
	}
	op := &sendOp{p: p, msg: Message{Value: make([]byte, size)}}
	if len(p.payloads) == 1 && size > HeaderSize {
		copy(op.msg.Value[HeaderSize:], p.payloads[0])
	}
	return op
}

// release returns op for reuse. Nothing may use op, its value or its history strings
// afterwards: the history has encoded them, the client has let go of the value.
func (op *sendOp) release() {
	op.msg.Key, op.value = nil, ""
	op.p.ops.Put(op)
}

// historyKey returns the record's key as a string aliasing the key bytes, which nothing
// changes once sent.
func (op *sendOp) historyKey() string {
	if len(op.msg.Key) == 0 {
		return ""
	}
	return unsafe.String(&op.msg.Key[0], len(op.msg.Key))
}

// send records the invoke, hands the record to the client and records the outcome (done).
func (p *producerTask) send(ctx context.Context, actual time.Time, op *sendOp) {
	r := p.r
	op.measured = !op.intended.Before(r.measureFrom)
	if op.measured {
		if d := actual.Sub(op.intended); d == 0 && p.rate == 0 {
			p.zeroDelays++
		} else {
			p.rec.record(kindPublishDelay, d)
		}
	}
	op.txnID = p.txnID
	if r.hw != nil {
		v := Header{ProducerID: uint32(p.proc), Sequence: op.seq}.AppendValue(op.valueBuf[:0])
		op.value = unsafe.String(&v[0], len(v))
		// Stamped with the time read before the send instead of another clock read.
		p.hist(p.invokes, &history.Event{Time: r.hw.Clock(actual), Process: p.proc, Type: history.Invoke, F: history.FSend, Topic: p.topic, Partition: -1, Key: op.historyKey(), Value: op.value, Offset: -1, TxnID: op.txnID})
	}
	r.counts.sent.Add(1)
	p.flight.add()
	p.client.Send(ctx, &op.msg, op)
}

// Done records a send's outcome; the client calls it once.
func (op *sendOp) Done(partition int32, offset int64, err error) {
	p := op.p
	r := p.r
	// One clock read gives the publish latency and the outcome's time in the history.
	var since time.Duration
	if op.measured || r.hw != nil {
		since = time.Since(op.intended)
	}
	if err == nil && op.measured {
		p.outRec.record(kindPublishLatency, since)
	}
	e := history.Event{Process: p.proc, F: history.FSend, Topic: p.topic, Partition: partition, Offset: offset, TxnID: op.txnID}
	switch {
	case err != nil:
		e.Type, e.Error, e.Offset = r.sendFailed(err), ErrorName(err), -1
	case r.cfg.Producer.Acks == "0":
		// acks=0: the broker never answers, so the client cannot know the outcome.
		// It is counted as indeterminate, as the history says.
		e.Type, e.Error, e.Offset = history.Info, "NO_ACKS", -1
		r.counts.indeterminate.Add(1)
	default:
		e.Type = history.OK
		r.counts.acked.Add(1)
		r.counts.ackedBytes.Add(int64(len(op.msg.Value)))
	}
	if r.hw != nil {
		e.Time, e.Key, e.Value = r.hw.Clock(op.intended)+int64(since), op.historyKey(), op.value
		p.hist(p.outcomes, &e)
	}
	op.release()
	p.flight.doneOne()
}

// sendFailed classifies a failed send (SendOutcome: fail or info), counts it and its error,
// and returns its history type.
func (r *runner) sendFailed(err error) history.Type {
	t := SendOutcome(err, *r.cfg.Producer.Retries)
	if t == history.Fail {
		r.counts.failed.Add(1)
	} else {
		r.counts.indeterminate.Add(1)
	}
	r.counts.addError(ErrorName(err))
	return t
}

// makePayloads returns the bodies that follow the header of a size-byte value: the payload
// file's bytes repeated, when given; else, with random set, pool bodies (OMB's randomized
// payloads) whose first ratio of bytes are random and the rest zeros; else none (zeros: a
// new value is already zeroed, so nothing is copied).
func makePayloads(size int, file []byte, random bool, ratio float64, pool int, rng *rand.Rand) [][]byte {
	n := size - HeaderSize
	if n <= 0 || (len(file) == 0 && !random) {
		return nil
	}
	if len(file) > 0 {
		b := make([]byte, n)
		for i := 0; i < n; i += copy(b[i:], file) {
		}
		return [][]byte{b}
	}
	bodies := make([][]byte, max(1, pool))
	randomBytes := min(n, int(math.Round(float64(n)*ratio)))
	for i := range bodies {
		b := make([]byte, n)
		for j := range randomBytes {
			b[j] = byte(rng.Uint32())
		}
		bodies[i] = b
	}
	return bodies
}
