package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests run the transaction coordinator in-process with the partition side replaced by
// markerLeader, which plays the partition leaders' WriteTxnMarkers: it records every marker,
// can refuse them (to hold a transaction in PrepareCommit/PrepareAbort), and for
// __consumer_offsets partitions appends a real control batch and tells the group coordinator,
// as the partition-side handler does. InitProducerId is driven through
// initTransactionalProducer, the function the InitProducerId handler calls for a
// transactional id. The end-to-end test with a real transactional client is
// TestFranzGoTransactions.

// markerLeader records and acknowledges the WriteTxnMarkers the coordinator sends.
type markerLeader struct {
	b *Broker

	mu      sync.Mutex
	refuse  bool
	markers []kmsg.WriteTxnMarkersRequestMarker
	refused int
}

func (m *markerLeader) send(_ context.Context, leader int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	for _, mk := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = mk.ProducerID
		if !m.refuse {
			m.markers = append(m.markers, mk)
		}
		for _, mt := range mk.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = mt.Topic
			for _, p := range mt.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				switch {
				case m.refuse:
					rp.ErrorCode = kerr.NotLeaderForPartition.Code
					m.refused++
				case mt.Topic == offsetsTopic:
					m.writeOffsetsMarker(p, mk.ProducerID, mk.ProducerEpoch, mk.Committed)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp, nil
}

// writeOffsetsMarker appends a control batch (Kafka's layout: control|transactional
// attributes, key version 0 + type, value EndTxnMarker) to a __consumer_offsets partition and
// calls the group coordinator's hook.
func (m *markerLeader) writeOffsetsMarker(partition int32, pid int64, epoch int16, commit bool) {
	key := make([]byte, 4)
	if commit {
		key[3] = 1
	}
	val := (&kmsg.EndTxnMarker{}).AppendTo(nil)
	raw := encodeProducerBatch([]record{{key: key, value: val}}, time.Now().UnixMilli(), pid, epoch)
	binary.BigEndian.PutUint16(raw[batchAttributes:], attrTransactional|attrControl)
	binary.BigEndian.PutUint32(raw[batchCRC:], crc32.Checksum(raw[batchAttributes:], castagnoli))
	if err := m.b.appendInternal(offsetsTopic, partition, raw); err != nil {
		panic(err)
	}
	m.b.groups.onTxnMarker(partition, pid, commit)
}

func (m *markerLeader) setRefuse(v bool) {
	m.mu.Lock()
	m.refuse = v
	m.mu.Unlock()
}

func (m *markerLeader) sent() []kmsg.WriteTxnMarkersRequestMarker {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]kmsg.WriteTxnMarkersRequestMarker(nil), m.markers...)
}

// txnFixture is an in-process broker with a topic "in" of 2 partitions, its marker leader and
// a franz-go client.
type txnFixture struct {
	t   *testing.T
	b   *Broker
	ml  *markerLeader
	cl  *kgo.Client
	dir string
}

func startTxnBroker(t *testing.T, dir string, props map[string]string) *txnFixture {
	t.Helper()
	all := map[string]string{"offsets.topic.num.partitions": "3", "transaction.state.log.num.partitions": "3"}
	for k, v := range props {
		all[k] = v
	}
	b, err := New(Config{NodeID: 1, Listen: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", DataDir: dir, Props: all},
		Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ml := &markerLeader{b: b}
	b.txns.sendMarkersTo = ml.send
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if !b.cl.waitCaughtUp() {
		t.Fatal("broker stopped before it caught up")
	}
	if kerrv := b.cl.createTopic("in", 2, 1, nil); kerrv != nil {
		t.Fatal(kerrv)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	f := &txnFixture{t: t, b: b, ml: ml, cl: cl, dir: dir}
	t.Cleanup(f.close)
	return f
}

func (f *txnFixture) close() {
	f.cl.Close()
	f.b.Close()
}

func (f *txnFixture) init(id string, timeoutMs int32, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	r := kmsg.NewPtrInitProducerIDRequest()
	r.Version = 5
	r.TransactionalID, r.TransactionTimeoutMillis, r.ProducerID, r.ProducerEpoch = &id, timeoutMs, pid, epoch
	return initTransactionalProducer(&conn{b: f.b}, r)
}

func (f *txnFixture) mustInit(id string) (int64, int16) {
	f.t.Helper()
	resp := f.init(id, 60000, -1, -1)
	if resp.ErrorCode != 0 {
		f.t.Fatalf("InitProducerId(%s): %v", id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func (f *txnFixture) request(req kmsg.Request) kmsg.Response {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := f.cl.Request(ctx, req)
	if err != nil {
		f.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// addPartitions sends AddPartitionsToTxn at version v and returns each partition's error.
func (f *txnFixture) addPartitions(v int16, id string, pid int64, epoch int16, topic string, parts ...int32) map[int32]error {
	r := kmsg.NewPtrAddPartitionsToTxnRequest()
	r.Version = v
	r.TransactionalID, r.ProducerID, r.ProducerEpoch = id, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	r.Topics = append(r.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.RequestWith(ctx, f.cl)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[int32]error{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = kerr.ErrorForCode(p.ErrorCode)
		}
	}
	return out
}

func (f *txnFixture) endTxn(v int16, id string, pid int64, epoch int16, commit bool) error {
	r := kmsg.NewPtrEndTxnRequest()
	r.Version = v
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = id, pid, epoch, commit
	return kerr.ErrorForCode(f.request(r).(*kmsg.EndTxnResponse).ErrorCode)
}

func (f *txnFixture) addOffsets(id string, pid int64, epoch int16, group string) error {
	r := kmsg.NewPtrAddOffsetsToTxnRequest()
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = id, pid, epoch, group
	return kerr.ErrorForCode(f.request(r).(*kmsg.AddOffsetsToTxnResponse).ErrorCode)
}

func (f *txnFixture) txnOffsetCommit(id string, pid int64, epoch int16, group string, partition int32, offset int64) error {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch, r.Generation = id, group, pid, epoch, -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "in"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = partition, offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return kerr.ErrorForCode(f.request(r).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode)
}

// committed returns group's committed offset of in-partition, -1 when none.
func (f *txnFixture) committed(group string, partition int32) int64 {
	off, _ := f.fetchOffset(group, partition, false)
	return off
}

// fetchOffset sends OffsetFetch for in-partition, with require_stable when stable is set.
func (f *txnFixture) fetchOffset(group string, partition int32, stable bool) (int64, error) {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Group, r.RequireStable = group, stable
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "in", []int32{partition}
	r.Topics = append(r.Topics, rt)
	resp := f.request(r).(*kmsg.OffsetFetchResponse)
	sp := resp.Topics[0].Partitions[0]
	return sp.Offset, kerr.ErrorForCode(sp.ErrorCode)
}

func (f *txnFixture) describe(id string) kmsg.DescribeTransactionsResponseTransactionState {
	r := kmsg.NewPtrDescribeTransactionsRequest()
	r.TransactionalIDs = []string{id}
	return f.request(r).(*kmsg.DescribeTransactionsResponse).TransactionStates[0]
}

// waitState waits up to 10s for id to reach state.
func (f *txnFixture) waitState(id, state string) kmsg.DescribeTransactionsResponseTransactionState {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := f.describe(id)
		if d.State == state {
			return d
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s stayed %s (error %v), want %s", id, d.State, kerr.ErrorForCode(d.ErrorCode), state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the value of the series name whose labels include label=value ("" for an
// unlabelled series), -1 when there is none.
func (f *txnFixture) metric(name, label, value string) float64 {
	f.t.Helper()
	mfs, err := f.b.metrics.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || (lp.GetName() == label && lp.GetValue() == value)
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func partitionsOf(d kmsg.DescribeTransactionsResponseTransactionState) map[string][]int32 {
	out := map[string][]int32{}
	for _, t := range d.Topics {
		out[t.Topic] = t.Partitions
	}
	return out
}

// TestTxnCommitLifecycle walks one consume-transform-produce transaction through the
// coordinator: partitions and the group's offsets partition are added, the offsets stay
// invisible until the commit marker, EndTxn's markers reach every partition with the
// producer's id and epoch, and the id ends CompleteCommit.
func TestTxnCommitLifecycle(t *testing.T) {
	f := startTxnBroker(t, t.TempDir(), nil)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorType = "tx", 1
	if resp := f.request(fc).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != 0 || resp.NodeID != 1 {
		t.Fatalf("FindCoordinator(transaction) = %+v", resp)
	}
	batched := kmsg.NewPtrFindCoordinatorRequest()
	batched.Version, batched.CoordinatorType, batched.CoordinatorKeys = 4, 1, []string{"tx", "other", ""}
	bresp, _ := handleFindCoordinator(&conn{b: f.b}, &request{version: 4, msg: batched})
	cos := bresp.(*kmsg.FindCoordinatorResponse).Coordinators
	if len(cos) != 3 || cos[0].NodeID != 1 || cos[0].ErrorCode != 0 || cos[1].NodeID != 1 || cos[2].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("batched FindCoordinator(transaction) = %+v", cos)
	}
	pid, epoch := f.mustInit("tx")
	if pid < 1<<40 || epoch != 0 {
		t.Fatalf("InitProducerId = %d/%d, want a node-1 producer id at epoch 0", pid, epoch)
	}
	if d := f.describe("tx"); d.State != "Empty" || d.ProducerID != pid || d.TimeoutMillis != 60000 || d.StartTimestamp != -1 {
		t.Fatalf("after init: %+v", d)
	}
	for p, err := range f.addPartitions(3, "tx", pid, epoch, "in", 0, 1) {
		if err != nil {
			t.Fatalf("AddPartitionsToTxn in-%d: %v", p, err)
		}
	}
	if err := f.addOffsets("tx", pid, epoch, "g"); err != nil {
		t.Fatalf("AddOffsetsToTxn: %v", err)
	}
	d := f.describe("tx")
	offP := partitionFor("g", 3)
	if parts := partitionsOf(d); d.State != "Ongoing" || len(parts["in"]) != 2 || len(parts[offsetsTopic]) != 1 || parts[offsetsTopic][0] != offP {
		t.Fatalf("ongoing: %+v", d)
	}
	if err := f.txnOffsetCommit("tx", pid, epoch, "g", 0, 42); err != nil {
		t.Fatalf("TxnOffsetCommit: %v", err)
	}
	if got := f.committed("g", 0); got != -1 {
		t.Fatalf("offset visible before the commit marker: %d", got)
	}
	if _, err := f.fetchOffset("g", 0, true); err != kerr.UnstableOffsetCommit {
		t.Fatalf("require_stable fetch with a pending transactional commit: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	if _, err := f.fetchOffset("g", 1, true); err != nil {
		t.Fatalf("require_stable fetch of a partition without a pending commit: %v", err)
	}
	if err := f.endTxn(3, "tx", pid, epoch, true); err != nil {
		t.Fatalf("EndTxn: %v", err)
	}
	f.waitState("tx", "CompleteCommit")
	if got := f.metric("kchaos_transactions_completed_total", "result", "commit"); got != 1 {
		t.Fatalf("kchaos_transactions_completed_total{result=commit} = %v, want 1", got)
	}
	if got, err := f.fetchOffset("g", 0, true); got != 42 || err != nil {
		t.Fatalf("committed offset after the commit marker = %d, %v; want 42", got, err)
	}
	var n int
	for _, m := range f.ml.sent() {
		if m.ProducerID != pid || m.ProducerEpoch != epoch || !m.Committed {
			t.Fatalf("marker %+v, want commit of %d/%d", m, pid, epoch)
		}
		for _, mt := range m.Topics {
			n += len(mt.Partitions)
		}
	}
	if n != 3 {
		t.Fatalf("markers reached %d partitions, want 3", n)
	}
	// A retried EndTxn after completion succeeds; the opposite outcome is refused.
	if err := f.endTxn(3, "tx", pid, epoch, true); err != nil {
		t.Fatalf("retried EndTxn: %v", err)
	}
	if err := f.endTxn(3, "tx", pid, epoch, false); err != kerr.InvalidTxnState {
		t.Fatalf("abort after commit: %v, want INVALID_TXN_STATE", err)
	}
	lt := kmsg.NewPtrListTransactionsRequest()
	lt.StateFilters = []string{"CompleteCommit", "Bogus"}
	lresp := f.request(lt).(*kmsg.ListTransactionsResponse)
	if len(lresp.TransactionStates) != 1 || lresp.TransactionStates[0].TransactionalID != "tx" ||
		len(lresp.UnknownStateFilters) != 1 || lresp.UnknownStateFilters[0] != "Bogus" {
		t.Fatalf("ListTransactions = %+v", lresp)
	}
	lt.StateFilters = []string{"Ongoing"}
	if lresp := f.request(lt).(*kmsg.ListTransactionsResponse); len(lresp.TransactionStates) != 0 {
		t.Fatalf("ListTransactions(Ongoing) = %+v", lresp.TransactionStates)
	}
	lt.StateFilters, lt.DurationFilterMillis = nil, time.Hour.Milliseconds()
	if lresp := f.request(lt).(*kmsg.ListTransactionsResponse); len(lresp.TransactionStates) != 0 {
		t.Fatalf("ListTransactions(started over an hour ago) = %+v", lresp.TransactionStates)
	}
	lt.DurationFilterMillis = 0
	if lresp := f.request(lt).(*kmsg.ListTransactionsResponse); len(lresp.TransactionStates) != 1 {
		t.Fatalf("ListTransactions(started at least 0ms ago) = %+v", lresp.TransactionStates)
	}
}

// TestTxnErrors checks the coordinator's refusals with their Kafka errors.
func TestTxnErrors(t *testing.T) {
	f := startTxnBroker(t, t.TempDir(), nil)
	if resp := f.init("tx", 900001, -1, -1); resp.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("timeout above transaction.max.timeout.ms: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType = 1
	if resp := f.request(fc).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("FindCoordinator with an empty transactional id: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if d := f.describe("nope"); d.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("describe unknown id: %v", kerr.ErrorForCode(d.ErrorCode))
	}
	pid, epoch := f.mustInit("tx")
	errs := f.addPartitions(3, "tx", pid, epoch, "missing", 0)
	if errs[0] != kerr.UnknownTopicOrPartition {
		t.Fatalf("unknown topic: %v", errs[0])
	}
	errs = f.addPartitions(3, "tx", pid, epoch, "in", 0, 7)
	if errs[7] != kerr.UnknownTopicOrPartition || errs[0] != kerr.OperationNotAttempted {
		t.Fatalf("unknown partition: %v", errs)
	}
	if d := f.describe("tx"); d.State != "Empty" {
		t.Fatalf("a refused add changed the state: %s", d.State)
	}
	if errs := f.addPartitions(3, "tx", pid+1, epoch, "in", 0); errs[0] != kerr.InvalidProducerIDMapping {
		t.Fatalf("wrong producer id: %v", errs[0])
	}
	if err := f.endTxn(3, "tx", pid, epoch, true); err != kerr.InvalidTxnState {
		t.Fatalf("EndTxn without a transaction: %v", err)
	}
	if err := f.endTxn(3, "unknown-id", pid, epoch, true); err != kerr.InvalidProducerIDMapping {
		t.Fatalf("EndTxn of an unknown id: %v", err)
	}
	// A second instance fences the first.
	pid2, epoch2 := f.mustInit("tx")
	if pid2 != pid || epoch2 != epoch+1 {
		t.Fatalf("second init = %d/%d, want %d/%d", pid2, epoch2, pid, epoch+1)
	}
	if errs := f.addPartitions(3, "tx", pid, epoch, "in", 0); errs[0] != kerr.ProducerFenced {
		t.Fatalf("fenced producer, v3: %v", errs[0])
	}
	// Below the KIP-588 versions the same fencing is INVALID_PRODUCER_EPOCH (called directly:
	// the client negotiates the highest version).
	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = "tx", pid, epoch
	ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "in", Partitions: []int32{0}}}
	aresp, _ := handleAddPartitionsToTxn(&conn{b: f.b}, &request{version: 1, msg: ap})
	if code := aresp.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("fenced producer, v1: %v", kerr.ErrorForCode(code))
	}
	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = "tx", pid, epoch, true
	eresp, _ := handleEndTxn(&conn{b: f.b}, &request{version: 1, msg: et})
	if code := eresp.(*kmsg.EndTxnResponse).ErrorCode; code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("fenced EndTxn, v1: %v", kerr.ErrorForCode(code))
	}
	if resp := f.init("tx", 60000, pid, 7); resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("KIP-360 init with an epoch never issued: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := f.init("tx", 60000, pid, epoch); resp.ErrorCode != 0 || resp.ProducerEpoch != epoch2 {
		t.Fatalf("KIP-360 retry of the init that made epoch %d: %+v", epoch2, resp)
	}
	// While markers are written the id is busy.
	f.ml.setRefuse(true)
	f.addPartitions(3, "tx", pid2, epoch2, "in", 1)
	if err := f.endTxn(3, "tx", pid2, epoch2, true); err != nil {
		t.Fatalf("EndTxn: %v", err)
	}
	if errs := f.addPartitions(3, "tx", pid2, epoch2, "in", 0); errs[0] != kerr.ConcurrentTransactions {
		t.Fatalf("add while completing: %v", errs[0])
	}
	if err := f.endTxn(3, "tx", pid2, epoch2, true); err != kerr.ConcurrentTransactions {
		t.Fatalf("retried EndTxn while completing: %v", err)
	}
	if resp := f.init("tx", 60000, -1, -1); resp.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init while completing: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	time.Sleep(300 * time.Millisecond)
	if d := f.describe("tx"); d.State != "PrepareCommit" {
		t.Fatalf("completed with markers refused: %s", d.State)
	}
	f.ml.setRefuse(false)
	f.waitState("tx", "CompleteCommit")
	if f.ml.refused < 2 {
		t.Fatalf("refused markers were retried %d times", f.ml.refused)
	}
}

// TestTxnInitAbortsOngoing checks that a new producer instance aborts the previous one's
// transaction (fencing it with a bumped epoch) and that aborted transactional offsets never
// become visible.
func TestTxnInitAbortsOngoing(t *testing.T) {
	f := startTxnBroker(t, t.TempDir(), nil)
	pid, epoch := f.mustInit("tx")
	f.addPartitions(3, "tx", pid, epoch, "in", 0)
	if err := f.addOffsets("tx", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := f.txnOffsetCommit("tx", pid, epoch, "g", 1, 7); err != nil {
		t.Fatal(err)
	}
	if resp := f.init("tx", 60000, -1, -1); resp.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init during a transaction: %v, want CONCURRENT_TRANSACTIONS", kerr.ErrorForCode(resp.ErrorCode))
	}
	f.waitState("tx", "CompleteAbort")
	ms := f.ml.sent()
	if len(ms) == 0 || ms[0].Committed || ms[0].ProducerEpoch != epoch+1 {
		t.Fatalf("markers %+v, want an abort at epoch %d", ms, epoch+1)
	}
	if got := f.committed("g", 1); got != -1 {
		t.Fatalf("aborted offset visible: %d", got)
	}
	pid2, epoch2 := f.mustInit("tx")
	if pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("init after the abort = %d/%d, want %d/%d", pid2, epoch2, pid, epoch+2)
	}
	if err := f.endTxn(3, "tx", pid, epoch, false); err != kerr.ProducerFenced {
		t.Fatalf("the old instance: %v, want PRODUCER_FENCED", err)
	}
}

// TestTxnTimeoutAborts checks transaction.timeout.ms: an ongoing transaction past it is
// aborted by the coordinator with a bumped epoch, fencing its producer.
func TestTxnTimeoutAborts(t *testing.T) {
	f := startTxnBroker(t, t.TempDir(), map[string]string{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "50"})
	resp := f.init("tx", 300, -1, -1)
	if resp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
	}
	pid, epoch := resp.ProducerID, resp.ProducerEpoch
	start := time.Now()
	f.addPartitions(3, "tx", pid, epoch, "in", 0, 1)
	d := f.waitState("tx", "CompleteAbort")
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("aborted after %v, before the 300ms timeout", took)
	}
	if d.ProducerEpoch != epoch+1 {
		t.Fatalf("epoch after the timeout abort = %d, want %d", d.ProducerEpoch, epoch+1)
	}
	if err := f.endTxn(3, "tx", pid, epoch, true); err != kerr.ProducerFenced {
		t.Fatalf("commit after the timeout: %v, want PRODUCER_FENCED", err)
	}
	if got := f.metric("kchaos_transactions_timed_out_total", "", ""); got != 1 {
		t.Fatalf("kchaos_transactions_timed_out_total = %v, want 1", got)
	}
	if got := f.metric("kchaos_transactions_completed_total", "result", "abort"); got != 1 {
		t.Fatalf("kchaos_transactions_completed_total{result=abort} = %v, want 1", got)
	}
	if got := f.metric("kchaos_transactions", "state", "CompleteAbort"); got != 1 {
		t.Fatalf("kchaos_transactions{state=CompleteAbort} = %v, want 1", got)
	}
}

// TestTxnStateSurvivesRestart stops the coordinator with one transaction ongoing, one held in
// PrepareCommit (its markers refused) and pending transactional offsets, and checks that the
// restarted coordinator loads them from __transaction_state and __consumer_offsets, finishes
// the commit and applies the offsets on its marker.
func TestTxnStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	f := startTxnBroker(t, dir, nil)
	pa, ea := f.mustInit("a")
	f.addPartitions(3, "a", pa, ea, "in", 0)
	pb, eb := f.mustInit("b")
	f.addPartitions(3, "b", pb, eb, "in", 1)
	if err := f.addOffsets("b", pb, eb, "g"); err != nil {
		t.Fatal(err)
	}
	if err := f.txnOffsetCommit("b", pb, eb, "g", 0, 99); err != nil {
		t.Fatal(err)
	}
	f.ml.setRefuse(true)
	if err := f.endTxn(3, "b", pb, eb, true); err != nil {
		t.Fatal(err)
	}
	f.close()

	f = startTxnBroker(t, dir, nil)
	if d := f.describe("a"); d.State != "Ongoing" || d.ProducerID != pa || len(partitionsOf(d)["in"]) != 1 {
		t.Fatalf("after restart a = %+v", d)
	}
	f.waitState("b", "CompleteCommit")
	if got := f.committed("g", 0); got != 99 {
		t.Fatalf("offset committed by the resumed transaction = %d, want 99", got)
	}
	// The state and the offsets come back once more, now from the completed log.
	f.close()
	f = startTxnBroker(t, dir, nil)
	if d := f.describe("b"); d.State != "CompleteCommit" || d.ProducerEpoch != eb {
		t.Fatalf("after second restart b = %+v", d)
	}
	if got := f.committed("g", 0); got != 99 {
		t.Fatalf("offset after second restart = %d, want 99", got)
	}
	// a was still ongoing: a new instance aborts it first.
	if resp := f.init("a", 60000, -1, -1); resp.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init of a, ongoing across restarts: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	f.waitState("a", "CompleteAbort")
	pa2, ea2 := f.mustInit("a")
	if pa2 != pa || ea2 != ea+2 {
		t.Fatalf("re-init of a after restart = %d/%d, want %d/%d", pa2, ea2, pa, ea+2)
	}
}

// TestTxnBugSwitches checks that the two transaction bug switches do the harm they promise:
// kchaos.bug.txn-offsets-before-marker makes a transactional offset visible at once and keeps
// it through an abort; kchaos.bug.txn-commit-on-abort writes an aborted transaction's markers
// as commits.
func TestTxnBugSwitches(t *testing.T) {
	f := startTxnBroker(t, t.TempDir(), map[string]string{bugTxnOffsetsEarly: "true", bugTxnCommitOnAbort: "true"})
	pid, epoch := f.mustInit("tx")
	f.addPartitions(3, "tx", pid, epoch, "in", 0)
	if err := f.addOffsets("tx", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := f.txnOffsetCommit("tx", pid, epoch, "g", 0, 17); err != nil {
		t.Fatal(err)
	}
	if got := f.committed("g", 0); got != 17 {
		t.Fatalf("offset before the marker with the bug on = %d, want 17", got)
	}
	if err := f.endTxn(3, "tx", pid, epoch, false); err != nil {
		t.Fatal(err)
	}
	f.waitState("tx", "CompleteAbort")
	for _, m := range f.ml.sent() {
		if !m.Committed {
			t.Fatalf("abort marker %+v written as an abort with the bug on", m)
		}
	}
	if got := f.committed("g", 0); got != 17 {
		t.Fatalf("offset after the abort with the bug on = %d, want 17", got)
	}
}

// TestTxnMarkerDuringGroupLoad checks that a marker reaching a __consumer_offsets partition
// while the group coordinator loads it (after the load read the log) is applied once the
// load installs the pending transactional offsets, instead of being lost.
func TestTxnMarkerDuringGroupLoad(t *testing.T) {
	f := startTxnBroker(t, t.TempDir(), nil)
	pid, epoch := f.mustInit("tx")
	if err := f.addOffsets("tx", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := f.txnOffsetCommit("tx", pid, epoch, "g", 1, 23); err != nil {
		t.Fatal(err)
	}
	c := f.b.groups
	p := partitionFor("g", c.numPartitions())
	c.unloadPartition(p)
	c.mu.Lock()
	c.loading[p] = true
	c.mu.Unlock()
	c.onTxnMarker(p, pid, true) // arrives while loading; no control batch in the log
	if err := c.loadPartition(p); err != nil {
		t.Fatal(err)
	}
	if got := f.committed("g", 1); got != 23 {
		t.Fatalf("offset after a marker during the load = %d, want 23", got)
	}
}
