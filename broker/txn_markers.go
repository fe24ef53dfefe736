package broker

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
	"github.com/kchaos/kchaos/broker/txn"
)

// Marker delivery. A transaction in PrepareCommit or PrepareAbort has one writer goroutine:
// it sends WriteTxnMarkers to the leader of every partition of the transaction (this broker
// included, over its own listener),
// retries the partitions not yet acknowledged with backoff until each answers, and then
// persists CompleteCommit or CompleteAbort. A partition whose topic was deleted counts as
// done, as in Kafka. The writer stops when the broker stops or the state it was started for
// is no longer current (this broker lost the partition, or the state moved on); the
// coordinator that loads the partition next resumes the markers.

// markerTimeout bounds one WriteTxnMarkers exchange (the leader answers once the marker is
// replicated).
const markerTimeout = 10 * time.Second

// markerBackoffMax caps the retry backoff of unacknowledged markers.
const markerBackoffMax = time.Second

// startCompletion starts the marker writer of t. tc.mu must be held.
func (tc *txnCoordinator) startCompletion(t *txn.Txn) {
	select {
	case <-tc.b.stop:
		return
	default:
	}
	tc.completing[t.ID] = t
	epoch := tc.owned[tc.txnPartitionOf(t.ID)]
	tc.b.bgWG.Add(1)
	go tc.complete(t, epoch)
}

// current reports whether t is still the installed state of its id and the broker runs.
func (tc *txnCoordinator) current(t *txn.Txn) bool {
	select {
	case <-tc.b.stop:
		return false
	default:
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.txns[t.ID] == t
}

// complete writes t's markers and then its Complete state.
func (tc *txnCoordinator) complete(t *txn.Txn, coordinatorEpoch int32) {
	defer tc.b.bgWG.Done()
	remaining := t.SortedPartitions()
	backoff := 20 * time.Millisecond
	for len(remaining) > 0 && tc.current(t) {
		remaining = tc.sendMarkers(t, coordinatorEpoch, remaining)
		if len(remaining) == 0 {
			break
		}
		select {
		case <-tc.b.stop:
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, markerBackoffMax)
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.completing[t.ID] == t {
		delete(tc.completing, t.ID)
	}
	if len(remaining) > 0 || tc.txns[t.ID] != t {
		return
	}
	// A failed write leaves t installed: the next tick starts a new writer, which rewrites
	// the markers (a repeated marker is harmless).
	if tc.store(t.Completed(tc.b.now())) == nil {
		if t.State == txn.PrepareCommit {
			tc.committed.Add(1)
		} else {
			tc.aborted.Add(1)
		}
	}
}

// sendMarkers sends one round of markers for parts, grouped by leader, and returns the
// partitions still unacknowledged.
func (tc *txnCoordinator) sendMarkers(t *txn.Txn, coordinatorEpoch int32, parts []txn.TopicPartition) []txn.TopicPartition {
	byLeader := map[int32][]txn.TopicPartition{}
	var left []txn.TopicPartition
	for _, tp := range parts {
		leader, exists := tc.leaderOf(tp)
		switch {
		case !exists:
		case leader == controller.NoLeader:
			left = append(left, tp)
		default:
			byLeader[leader] = append(byLeader[leader], tp)
		}
	}
	committed := t.State == txn.PrepareCommit || tc.b.cfg.bug(bugTxnCommitOnAbort)
	var first txn.TopicPartition
	split := tc.b.cfg.bug(bugTxnSplitMarkers)
	if split {
		first = t.SortedPartitions()[0]
	}
	for _, leader := range slices.Sorted(maps.Keys(byLeader)) {
		tps := byLeader[leader]
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		req.Version = 1
		markers := map[bool]*kmsg.WriteTxnMarkersRequestMarker{}
		for _, tp := range tps {
			c := committed
			if split && tp != first {
				c = !c
			}
			m := markers[c]
			if m == nil {
				m = &kmsg.WriteTxnMarkersRequestMarker{ProducerID: t.ProducerID, ProducerEpoch: t.Epoch, Committed: c, CoordinatorEpoch: coordinatorEpoch}
				markers[c] = m
			}
			if n := len(m.Topics); n == 0 || m.Topics[n-1].Topic != tp.Topic {
				mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
				mt.Topic = tp.Topic
				m.Topics = append(m.Topics, mt)
			}
			m.Topics[len(m.Topics)-1].Partitions = append(m.Topics[len(m.Topics)-1].Partitions, tp.Partition)
		}
		for _, c := range []bool{committed, !committed} {
			if m := markers[c]; m != nil {
				req.Markers = append(req.Markers, *m)
			}
		}
		acked := tc.writeMarkers(leader, req)
		for _, tp := range tps {
			if !acked[tp] {
				left = append(left, tp)
			}
		}
	}
	return left
}

// writeMarkers sends req to leader and returns the partitions it acknowledged (written, or
// gone with their topic).
func (tc *txnCoordinator) writeMarkers(leader int32, req *kmsg.WriteTxnMarkersRequest) map[txn.TopicPartition]bool {
	ctx, cancel := context.WithTimeout(context.Background(), markerTimeout)
	defer cancel()
	go func() {
		select {
		case <-tc.b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	send := tc.sendMarkersTo
	if send == nil {
		send = tc.requestMarkers
	}
	resp, err := send(ctx, leader, req)
	if err != nil {
		tc.b.log.Debug("write transaction markers", "leader", leader, "err", err)
		return nil
	}
	acked := map[txn.TopicPartition]bool{}
	for _, m := range resp.Markers {
		for _, rt := range m.Topics {
			for _, rp := range rt.Partitions {
				switch err := kerr.ErrorForCode(rp.ErrorCode); err {
				case nil, kerr.UnknownTopicOrPartition:
					acked[txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = true
				default:
					tc.b.log.Debug("transaction marker refused", "topic", rt.Topic, "partition", rp.Partition, "err", err)
				}
			}
		}
	}
	return acked
}

// requestMarkers sends req to broker leader over the marker connection.
func (tc *txnCoordinator) requestMarkers(ctx context.Context, leader int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
	kresp, err := tc.peer(leader).Request(ctx, req, markerTimeout)
	if err != nil {
		return nil, err
	}
	return kresp.(*kmsg.WriteTxnMarkersResponse), nil
}

// leaderOf returns the leader of tp and whether the partition exists.
func (tc *txnCoordinator) leaderOf(tp txn.TopicPartition) (int32, bool) {
	ip := tc.b.cl.ctl.Image().Partition(tp.Topic, tp.Partition)
	if ip == nil {
		return controller.NoLeader, false
	}
	return ip.Leader, true
}

// peer returns the marker connection to broker id (this broker too, over its own listener).
func (tc *txnCoordinator) peer(id int32) *peerClient {
	tc.peersMu.Lock()
	defer tc.peersMu.Unlock()
	pc := tc.peers[id]
	if pc == nil {
		pc = newPeerClient(tc.b.cfg.NodeID, id, tc.b.cl.resolve)
		tc.peers[id] = pc
	}
	return pc
}

// closePeers closes the marker connections when the broker stops.
func (tc *txnCoordinator) closePeers() {
	tc.peersMu.Lock()
	defer tc.peersMu.Unlock()
	for _, pc := range tc.peers {
		pc.Close()
	}
}
