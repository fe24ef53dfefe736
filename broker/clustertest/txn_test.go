package clustertest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// marker sends WriteTxnMarkers for one partition to broker id.
func (p *rawProducer) marker(id int32, topic string, partition int32, commit bool) error {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.Committed = p.pid, commit
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{partition}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := p.cl.Ping(ctx); err != nil {
		return err
	}
	resp, err := p.cl.Broker(int(id)).RetriableRequest(ctx, req)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode)
}

// TestAbortedTransactionSurvivesLeaderKill: a transaction is aborted on the leader, which is
// then killed. The new leader built its aborted-transaction index from the replicated log,
// so read_committed consumers still skip the aborted records and read_uncommitted ones see
// them.
func TestAbortedTransactionSurvivesLeaderKill(t *testing.T) {
	c := clustertest.Start(t, 3)
	c.CreateTopic("txnkill", 1, 3, map[string]string{"min.insync.replicas": "2"})
	leader := c.WaitLeader("txnkill", 0)
	p := newRawProducer(t, c, true)
	p.txn = true
	c.CheckFor(20*time.Second, "the transactional batch acknowledged", func() error {
		_, err := p.produce(leader, "txnkill", 0, p.batch(0, "a0", "a1"), 10*time.Second)
		return err
	})
	if err := p.marker(leader, "txnkill", 0, false); err != nil {
		t.Fatalf("abort marker: %v", err)
	}
	plain := newRawProducer(t, c, false)
	if _, err := plain.produce(leader, "txnkill", 0, plain.batch(0, "p0"), 10*time.Second); err != nil {
		t.Fatalf("plain record: %v", err)
	}
	c.Kill(leader)
	c.CheckFor(30*time.Second, "a new leader", func() error {
		st, err := c.Partition("txnkill", 0)
		if err != nil || st.Leader < 0 || st.Leader == leader {
			return errf("state %+v, %v", st, err)
		}
		return nil
	})
	read := func(level kgo.IsolationLevel) []string {
		cl := c.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"txnkill": {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(level))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out []string
		for !slices.Contains(out, "p0") {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read: no p0 within 30s; read %q", out)
			}
			fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		}
		return out
	}
	if got := read(kgo.ReadCommitted()); !slices.Equal(got, []string{"p0"}) {
		t.Fatalf("read_committed on the new leader: %q, want only p0", got)
	}
	if got := read(kgo.ReadUncommitted()); !slices.Equal(got, []string{"a0", "a1", "p0"}) {
		t.Fatalf("read_uncommitted on the new leader: %q", got)
	}
	t.Logf("leader %d killed; the new leader hides the aborted transaction", leader)
}
