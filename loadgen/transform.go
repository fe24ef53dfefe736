package loadgen

import (
	"context"
	"slices"
	"time"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
)

// transformTask is one consume-transform-produce process (consumer mode transform): it
// reads its group's share of the input topic and writes one output record per input record
// to the output topic, one poll per transaction. With commit mode transactional the input
// offsets are committed in the transaction that writes the outputs; otherwise they are
// committed after (or before) the outputs are acknowledged.
type transformTask struct {
	consumerTask
	tdrv     TransformDriver
	tset     TransformSettings
	outTopic string
	tcl      Transformer
	// outSeq numbers this process's outputs across restarts, so every output send has a
	// value of its own.
	outSeq uint64
}

// run runs sessions until ctx ends; a crash ends a session and, after the fault's delay,
// starts a new one with a fresh client under the same process number and transactional id
// (which fences the crashed client's open transaction).
func (t *transformTask) run(ctx context.Context) {
	t.r.runSessions(ctx, "transformer", t.proc, t.session, func() error {
		cl, err := t.tdrv.NewTransformer(t.tset)
		if err == nil {
			t.tcl = cl
		}
		return err
	})
}

// session polls, transforms and commits until ctx ends, or until a crash fault. Faults are
// taken after the next poll that returned records, once its outputs were acknowledged and
// before its offsets are committed (or its transaction ended): a crash there is the case
// only transactions keep exact, and a stall there holds the transaction open.
func (t *transformTask) session(ctx context.Context) (ConsumerFault, bool) {
	r := t.r
	cc := &r.cfg.Consumer
	txnal := cc.Commit == workloads.CommitTransactional
	r.hist(&history.Event{Process: t.proc, Type: history.OK, F: history.FSubscribe, Topic: t.topic, Partition: -1, Offset: -1})
	// work is a context for client calls that must finish once started, even at shutdown.
	work := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		if !r.backlogReached() {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		polled, err := t.tcl.Poll(ctx, 100*time.Millisecond)
		if err != nil {
			if ctx.Err() == nil {
				r.counts.addError(ErrorName(err))
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		r.notePoll(t.proc, t.topic, t.membership(), polled)
		recs := t.recordPoll(polled.Records)
		if len(recs) == 0 {
			continue
		}
		next := nextOffsets(recs)
		if cc.Commit == workloads.CommitBeforeProcessing {
			t.commit(next)
		}
		var txnID int64
		if txnal {
			txnID = txnSeq.Add(1)
			txn := &history.Txn{Op: "begin", TransactionalID: t.tset.Producer.TransactionalID}
			if err := t.tcl.Begin(); err != nil {
				r.counts.addError(ErrorName(err))
				r.hist(&history.Event{Process: t.proc, Type: history.Fail, F: history.FTxn, Partition: -1, Offset: -1, TxnID: txnID, Txn: txn, Error: ErrorName(err)})
				// The polled inputs were not transformed: read them again from the committed
				// offsets with a fresh client.
				if !t.restart() {
					return ConsumerFault{}, false
				}
				continue
			}
			r.hist(&history.Event{Process: t.proc, Type: history.OK, F: history.FTxn, Partition: -1, Offset: -1, TxnID: txnID, Txn: txn})
		}
		t.produce(work, polled.Records, recs, txnID)
		t.debt = sleepOwed(t.debt + time.Duration(len(recs))*time.Duration(cc.ProcessingTime))
		if f, crash := t.fault(ctx); crash {
			t.crash()
			return f, true
		}
		switch {
		case txnal:
			if !t.endTxn(work, txnID, next, recs) && !t.restart() {
				return ConsumerFault{}, false
			}
		case cc.Commit == workloads.CommitAfterProcessing:
			t.processed(recs)
			t.commit(next)
		default:
			t.processed(recs)
		}
	}
	t.tcl.Close()
	return ConsumerFault{}, false
}

// fault returns a pending crash fault; a stall fault is served here (the loop stops polling
// for its length).
func (t *transformTask) fault(ctx context.Context) (ConsumerFault, bool) {
	select {
	case f := <-t.faults:
		if f.Kind == FaultCrash {
			return f, true
		}
		select {
		case <-time.After(f.For):
		case <-ctx.Done():
		}
	default:
	}
	return ConsumerFault{}, false
}

// restart replaces the client after a transaction error the client cannot recover from,
// so reading resumes at the committed offsets; false when no new client could be made (the
// session ends).
func (t *transformTask) restart() bool {
	t.tcl.Close()
	cl, err := t.tdrv.NewTransformer(t.tset)
	if err != nil {
		t.r.counts.addError(ErrorName(err))
		t.r.log.Warn("loadgen: transformer restart failed; it stops", "process", t.proc, "err", err)
		return false
	}
	t.tcl = cl
	return true
}

func (t *transformTask) crash() {
	t.r.hist(&history.Event{Process: t.proc, Type: history.Info, F: history.FCrash, Topic: t.topic, Partition: -1, Offset: -1})
	t.tcl.Close()
}

// produce sends one output per input record and waits for every outcome.
func (t *transformTask) produce(ctx context.Context, in []Fetched, recs []history.Record, txnID int64) {
	r := t.r
	for i, f := range in {
		hdr := Header{RunID: r.runID, ProducerID: uint32(t.proc), Sequence: t.outSeq}
		t.outSeq++
		if ih, err := DecodeHeader(f.Value); err == nil {
			hdr.IntendedUnixNano = ih.IntendedUnixNano
		}
		value := recs[i].Value + "/" + hdr.Value()
		m := &Message{Topic: t.outTopic, Key: f.Key, Value: OutputValue(hdr, f.Value)}
		key := string(f.Key)
		r.hist(&history.Event{Process: t.proc, Type: history.Invoke, F: history.FSend, Topic: t.outTopic, Partition: -1, Key: key, Value: value, Offset: -1, TxnID: txnID})
		r.counts.sent.Add(1)
		t.tcl.Send(ctx, m, OutcomeFunc(func(partition int32, offset int64, err error) {
			e := &history.Event{Process: t.proc, Type: history.OK, F: history.FSend, Topic: t.outTopic, Partition: partition, Key: key, Value: value, Offset: offset, TxnID: txnID}
			if err != nil {
				e.Type, e.Error, e.Offset = r.sendFailed(err), ErrorName(err), -1
			} else {
				r.counts.acked.Add(1)
				r.counts.ackedBytes.Add(int64(len(m.Value)))
			}
			r.hist(e)
		}))
	}
	fctx, cancel := context.WithTimeout(ctx, time.Duration(r.cfg.Producer.DeliveryTimeout))
	defer cancel()
	if err := t.tcl.Flush(fctx); err != nil {
		r.counts.addError(ErrorName(err))
	}
}

// endTxn commits the transaction with the input offsets and records its outcome: the
// commit of the offsets (ok when the transaction committed, fail when it aborted, info when
// unknown), the transaction's end, and the inputs processed when it committed. It returns
// false when the transaction did not commit: the client must be replaced, so the inputs are
// read again from the committed offsets and the new read shows in the history as a new
// assignment (a client rewinding on its own would look like reading backwards).
func (t *transformTask) endTxn(ctx context.Context, txnID int64, next map[int32]int64, recs []history.Record) bool {
	r := t.r
	// The invoke comes first: readers may see a commit before the client hears of it.
	r.hist(&history.Event{Process: t.proc, Type: history.Invoke, F: history.FTxn, Partition: -1, Offset: -1, TxnID: txnID,
		Txn: &history.Txn{Op: "commit", TransactionalID: t.tset.Producer.TransactionalID}})
	ectx, cancel := context.WithTimeout(ctx, time.Duration(r.cfg.Producer.DeliveryTimeout))
	committed, err := t.tcl.End(ectx, next, true)
	cancel()
	ce := &history.Event{Process: t.proc, Type: history.OK, F: history.FCommit, Topic: t.topic, Partition: -1, Offset: -1, TxnID: txnID}
	for _, p := range slices.Sorted(mapKeys(next)) {
		ce.Offsets = append(ce.Offsets, history.PartitionOffset{Partition: p, Offset: next[p]})
	}
	te := &history.Event{Process: t.proc, Type: history.OK, F: history.FTxn, Partition: -1, Offset: -1, TxnID: txnID,
		Txn: &history.Txn{Op: "commit", TransactionalID: t.tset.Producer.TransactionalID}}
	switch {
	case err != nil:
		ce.Type, ce.Error = history.Info, ErrorName(err)
		te.Type, te.Error = history.Info, ce.Error
		r.counts.addError(ce.Error)
	case !committed:
		ce.Type, ce.Error = history.Fail, "TRANSACTION_ABORTED"
		te.Txn.Op = "abort"
	}
	r.counts.commits.Add(1)
	r.hist(ce)
	r.hist(te)
	if err == nil && committed {
		t.processed(recs)
	}
	return err == nil && committed
}

// processed records the inputs whose processing took effect; the catch-up wait counts
// them as read.
func (t *transformTask) processed(recs []history.Record) {
	t.pos.advance(recs)
	t.r.hist(&history.Event{Process: t.proc, Type: history.OK, F: history.FProcess, Topic: t.topic, Partition: -1, Offset: -1, Records: recs})
	t.r.counts.processed.Add(int64(len(recs)))
}

// commit commits input offsets outside any transaction.
func (t *transformTask) commit(offsets map[int32]int64) {
	t.consumerTask.client = t.tcl
	t.consumerTask.commit(offsets)
}
