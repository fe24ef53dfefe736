package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
)

// writeMarker sends WriteTxnMarkers for one partition and returns its error.
func writeMarker(t testing.TB, c *rawConn, topic string, partition int32, pid int64, epoch int16, commit bool, coordEpoch int32) error {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.SetVersion(1)
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, commit, coordEpoch
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{partition}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp := c.roundTrip(req).(*kmsg.WriteTxnMarkersResponse)
	return kerr.ErrorForCode(resp.Markers[0].Topics[0].Partitions[0].ErrorCode)
}

// listEnd answers ListOffsets latest with the given isolation level (0 uncommitted, 1 committed).
func listEnd(t testing.TB, c *rawConn, topic string, isolation int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(4)
	req.ReplicaID, req.IsolationLevel = -1, isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	sp := c.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	return sp.Offset
}

// consumeValues reads partition 0 of topic from the start with franz-go at the isolation
// level until it has seen the record whose value is last, and returns every value read.
func consumeValues(t testing.TB, addr, topic string, isolation kgo.IsolationLevel, last string) []string {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(isolation), kgo.FetchMaxWait(100*time.Millisecond))
	c := ctx(t, 15*time.Second)
	var out []string
	for !slices.Contains(out, last) {
		fs := cl.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("consume %s: no %q within 15s; read %q", topic, last, out)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

func describeProducers(t testing.TB, c *rawConn, topic string) []kmsg.DescribeProducersResponseTopicPartitionActiveProducer {
	t.Helper()
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	sp := c.roundTrip(req).(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
		t.Fatalf("DescribeProducers: %v", err)
	}
	return sp.ActiveProducers
}

// TestTransactionMarkersAndReadCommitted writes transactional batches and markers by hand (the
// partition side of a transaction, without a coordinator): an open transaction holds the last
// stable offset back, an aborted one is invisible to read_committed consumers and visible to
// read_uncommitted ones, a committed one is visible to both.
func TestTransactionMarkersAndReadCommitted(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "txn", 1, nil)
	c := dialRaw(t, p.Addr())
	pid, epoch := initProducerID(t, c)
	plain := func(v string) {
		t.Helper()
		want := listEnd(t, c, "txn", 0)
		expectProduce(t, "plain "+v, produceOne(t, c, "txn", batch(time.Now().UnixMilli(), []byte(v))), nil, want)
	}
	txnBatch := func(seq int32, vals ...string) []byte {
		b := producerBatchOf(pid, epoch, seq, len(vals), true)
		// Replace the generated values so the test can name them.
		bs := make([][]byte, len(vals))
		for i, v := range vals {
			bs[i] = []byte(v)
		}
		nb := batch(time.Now().UnixMilli(), bs...)
		copy(nb[43:61], b[43:61])
		nb[22] |= 0x10
		fixCRC(nb)
		return nb
	}

	// A committed transaction: offsets 0-1, marker at 2.
	expectProduce(t, "committed txn", produceOne(t, c, "txn", txnBatch(0, "c0", "c1")), nil, 0)
	if got := listEnd(t, c, "txn", 1); got != 0 {
		t.Fatalf("read_committed end with the transaction open: %d, want 0", got)
	}
	if ps := describeProducers(t, c, "txn"); len(ps) != 1 || ps[0].ProducerID != pid || ps[0].CurrentTxnStartOffset != 0 {
		t.Fatalf("DescribeProducers with an open transaction: %+v", ps)
	}
	if err := writeMarker(t, c, "txn", 0, pid, epoch, true, 0); err != nil {
		t.Fatalf("commit marker: %v", err)
	}
	// An aborted transaction: offsets 3-4, a plain record at 5 in between, marker at 6.
	expectProduce(t, "aborted txn", produceOne(t, c, "txn", txnBatch(2, "a0", "a1")), nil, 3)
	plain("p0")
	if got, hw := listEnd(t, c, "txn", 1), listEnd(t, c, "txn", 0); got != 3 || hw != 6 {
		t.Fatalf("end offsets with the transaction open: read_committed %d, read_uncommitted %d; want 3 and 6", got, hw)
	}
	held := consumeValues(t, p.Addr(), "txn", kgo.ReadUncommitted(), "p0")
	if !slices.Equal(held, []string{"c0", "c1", "a0", "a1", "p0"}) {
		t.Fatalf("read_uncommitted with the transaction open: %q", held)
	}
	if err := writeMarker(t, c, "txn", 0, pid, epoch, false, 0); err != nil {
		t.Fatalf("abort marker: %v", err)
	}
	plain("p1")
	if got := listEnd(t, c, "txn", 1); got != 8 {
		t.Fatalf("read_committed end after the abort: %d, want 8", got)
	}
	if got := consumeValues(t, p.Addr(), "txn", kgo.ReadCommitted(), "p1"); !slices.Equal(got, []string{"c0", "c1", "p0", "p1"}) {
		t.Fatalf("read_committed: %q, want the committed and plain records only", got)
	}
	if got := consumeValues(t, p.Addr(), "txn", kgo.ReadUncommitted(), "p1"); !slices.Equal(got, []string{"c0", "c1", "a0", "a1", "p0", "p1"}) {
		t.Fatalf("read_uncommitted: %q, want every data record", got)
	}
	// A marker from an older coordinator epoch, or for an older producer epoch, is fenced.
	if err := writeMarker(t, c, "txn", 0, pid, epoch, true, -1); err != kerr.TransactionCoordinatorFenced {
		t.Fatalf("marker from an older coordinator epoch: %v", err)
	}
	expectProduce(t, "bumped epoch", produceOne(t, c, "txn", producerBatchOf(pid, epoch+1, 0, 1, false)), nil, 8)
	if err := writeMarker(t, c, "txn", 0, pid, epoch, true, 0); err != kerr.ProducerFenced {
		t.Fatalf("marker for an older producer epoch: %v", err)
	}
	// The aborted-transaction index survives a restart.
	p.Kill()
	p.Restart()
	bumped := fmt.Sprintf("p%d-e%d-s0", pid, epoch+1)
	if got := consumeValues(t, p.Addr(), "txn", kgo.ReadCommitted(), bumped); !slices.Equal(got, []string{"c0", "c1", "p0", "p1", bumped}) {
		t.Fatalf("read_committed after a restart: %q", got)
	}
}
