package broker

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/txn"
)

// txnCoordinator is the broker's transaction coordinator: it owns the transactional ids whose
// __transaction_state partition this broker leads, serialises every transition under one
// mutex, persists each new state to __transaction_state before installing it (and before
// answering), writes the markers of completing transactions to the partitions' leaders
// (txn_markers.go), and aborts transactions past their timeout.
//
// Ownership follows partition leadership exactly as for the group coordinator: loadPartition
// when this broker becomes a partition's leader (resuming the markers of every transaction
// it finds in PrepareCommit or PrepareAbort), unloadPartition when it stops leading.
//
// Lock order: txnCoordinator.mu before Broker.mu and the partition locks.
type txnCoordinator struct {
	b   *Broker
	cfg txn.Config

	ready   atomic.Bool // __transaction_state exists and this broker's loads have run
	readyMu sync.Mutex  // serialises creating the topic

	// handoffs runs ownership changes in the order the images made them.
	handoffs handoffQueue

	// sendMarkersTo delivers WriteTxnMarkers to a partition leader; nil means
	// requestMarkers (the Kafka protocol). In-process tests replace it to observe markers.
	sendMarkersTo func(ctx context.Context, leader int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error)

	peersMu sync.Mutex
	peers   map[int32]*peerClient // marker connections to partition leaders (self included)

	mu   sync.Mutex // guards everything below
	txns map[string]*txn.Txn
	// owned maps each loaded partition to its coordinator epoch (the partition's leader epoch
	// when it was loaded), sent with the markers.
	owned   map[int32]int32
	loading map[int32]bool
	// completing maps ids to the state whose markers a goroutine is writing.
	completing map[string]*txn.Txn
	lastExpiry time.Time

	// committed, aborted and timedOut count completed and timed-out transactions (metrics).
	committed, aborted, timedOut atomic.Int64
}

// txnTickInterval is how often the coordinator looks for transactions whose markers need a
// writer (after a load or a failed completion). Default 100ms.
const txnTickInterval = 100 * time.Millisecond

func newTxnCoordinator(b *Broker) *txnCoordinator {
	return &txnCoordinator{
		b:          b,
		cfg:        txn.Config{MaxTimeout: time.Duration(b.cfg.propInt("transaction.max.timeout.ms")) * time.Millisecond},
		peers:      map[int32]*peerClient{},
		txns:       map[string]*txn.Txn{},
		owned:      map[int32]int32{},
		loading:    map[int32]bool{},
		completing: map[string]*txn.Txn{},
	}
}

// numPartitions is transaction.state.log.num.partitions.
func (tc *txnCoordinator) numPartitions() int32 {
	return int32(tc.b.cfg.propInt("transaction.state.log.num.partitions"))
}

// ensureReady creates __transaction_state on first use, as Kafka does on the first
// FindCoordinator for a transactional id: transaction.state.log.num.partitions partitions,
// compacted, with transaction.state.log.replication.factor replicas capped at the number of
// live brokers. The partitions' leaders load their transactions (applyPartition); this
// broker's loads have run when it returns.
func (tc *txnCoordinator) ensureReady() *kerr.Error {
	if tc.ready.Load() {
		return nil
	}
	tc.readyMu.Lock()
	defer tc.readyMu.Unlock()
	if tc.ready.Load() {
		return nil
	}
	cfgs := map[string]string{"cleanup.policy": "compact", "segment.bytes": strconv.Itoa(txnStateSegmentBytes)}
	if err := tc.b.cl.createInternalTopic(txnStateTopic, tc.numPartitions(), "transaction.state.log.replication.factor", cfgs); err != nil {
		tc.b.log.Warn("create __transaction_state", "err", err)
		return kerr.CoordinatorNotAvailable
	}
	tc.handoffs.wait()
	tc.ready.Store(true)
	return nil
}

// handOff runs an ownership change after every change queued before it, off the image-apply
// path (see coordinator.handOff).
func (tc *txnCoordinator) handOff(f func()) { tc.handoffs.run(&tc.b.bgWG, f) }

// awaitHandoffs waits until every ownership change queued so far has run.
func (tc *txnCoordinator) awaitHandoffs() { tc.handoffs.wait() }

// loadPartition reads partition p of __transaction_state and installs its transactions;
// their ids are refused with COORDINATOR_LOAD_IN_PROGRESS meanwhile. Completing transactions
// get their marker writers from the next tick.
func (tc *txnCoordinator) loadPartition(p int32) error {
	tc.mu.Lock()
	tc.loading[p] = true
	tc.mu.Unlock()
	txns, err := tc.readTxnPartition(p)
	epoch := int32(0)
	if part, kerrv := tc.b.partitionFor(txnStateTopic, p); kerrv == nil {
		epoch = part.LeaderEpoch()
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	delete(tc.loading, p)
	if err != nil {
		return err
	}
	for id, t := range txns {
		tc.txns[id] = t
	}
	tc.owned[p] = epoch
	return nil
}

// unloadPartition drops the transactions of partition p: this broker stopped leading it.
// Their marker writers notice and stop; the new coordinator resumes them.
func (tc *txnCoordinator) unloadPartition(p int32) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	delete(tc.owned, p)
	for id := range tc.txns {
		if tc.txnPartitionOf(id) == p {
			delete(tc.txns, id)
		}
	}
}

// lookup returns the state of id (nil when unknown) if this broker coordinates it.
// tc.mu must be held.
func (tc *txnCoordinator) lookup(id string) (*txn.Txn, *kerr.Error) {
	p := tc.txnPartitionOf(id)
	if tc.loading[p] {
		return nil, kerr.CoordinatorLoadInProgress
	}
	if _, ok := tc.owned[p]; !ok {
		return nil, kerr.NotCoordinator
	}
	return tc.txns[id], nil
}

// update runs op on the state of id under the coordinator lock. A non-nil next state is
// persisted and installed (and, when it is a Prepare state, its markers started) before the
// op's error, if any, is returned; a failed write returns NOT_COORDINATOR or
// COORDINATOR_NOT_AVAILABLE and changes nothing. It returns the state after the call.
func (tc *txnCoordinator) update(id string, op func(cur *txn.Txn) (*txn.Txn, *kerr.Error)) (*txn.Txn, *kerr.Error) {
	if id == "" {
		return nil, kerr.InvalidRequest
	}
	if err := tc.ensureReady(); err != nil {
		return nil, err
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	cur, err := tc.lookup(id)
	if err != nil {
		return nil, err
	}
	next, opErr := op(cur)
	if next == nil {
		return cur, opErr
	}
	if err := tc.store(next); err != nil {
		return cur, err
	}
	if next.State.Preparing() {
		tc.startCompletion(next)
	}
	return next, opErr
}

// store persists t and installs it. tc.mu must be held.
func (tc *txnCoordinator) store(t *txn.Txn) *kerr.Error {
	raw := encodeBatch([]record{txnRecord(t)}, tc.b.now().UnixMilli())
	if err := tc.b.appendInternal(txnStateTopic, tc.txnPartitionOf(t.ID), raw); err != nil {
		tc.b.log.Warn("store transaction state", "transactional_id", t.ID, "err", err)
		if err == kerr.NotLeaderForPartition {
			return kerr.NotCoordinator
		}
		return kerr.CoordinatorNotAvailable
	}
	tc.txns[t.ID] = t
	return nil
}

// tickLoop drives marker resumption and timeout expiry until the broker stops.
func (tc *txnCoordinator) tickLoop() {
	defer tc.b.bgWG.Done()
	t := time.NewTicker(txnTickInterval)
	defer t.Stop()
	for {
		select {
		case <-tc.b.stop:
			tc.closePeers()
			return
		case <-t.C:
			tc.tick(tc.b.now())
		}
	}
}

// tick starts marker writers for completing transactions that have none, and every
// transaction.abort.timed.out.transaction.cleanup.interval.ms aborts the transactions past
// their timeout, bumping the epoch so their producers are fenced.
func (tc *txnCoordinator) tick(now time.Time) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, t := range tc.txns {
		if t.State.Preparing() && tc.completing[t.ID] != t {
			tc.startCompletion(t)
		}
	}
	interval := time.Duration(tc.b.cfg.propInt("transaction.abort.timed.out.transaction.cleanup.interval.ms")) * time.Millisecond
	if now.Sub(tc.lastExpiry) < interval {
		return
	}
	tc.lastExpiry = now
	for _, t := range tc.txns {
		if !t.Expired(now) {
			continue
		}
		next, err := txn.Expire(t, now, tc.b.producerIDs.nextID)
		if err != nil {
			continue
		}
		if tc.store(next) != nil {
			continue
		}
		tc.b.log.Info("aborting timed-out transaction", "transactional_id", t.ID, "producer_id", t.ProducerID, "epoch", t.Epoch)
		tc.timedOut.Add(1)
		tc.startCompletion(next)
	}
}
