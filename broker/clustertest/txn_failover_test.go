package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// txnOpts are the broker settings of the transaction tests: few internal partitions, so the
// topics are created quickly.
var txnOpts = []clustertest.Option{
	clustertest.Set("transaction.state.log.num.partitions", "3"),
	clustertest.Set("offsets.topic.num.partitions", "3"),
}

// TestTxnSurvivesCoordinatorKill kills the transaction coordinator twice: once between
// EndTxn's PrepareCommit and the markers (the coordinator's links to the partition leaders
// are cut so the markers cannot land; the new coordinator resumes them), and once during an
// ongoing transaction (the producer then commits through the new coordinator, which loaded
// the transaction's partitions from __transaction_state). Both transactions must end
// CompleteCommit and every record must be visible to read_committed exactly once.
//
// This test needs the partition side of transactions from the idem branch (InitProducerId,
// transactional Produce, WriteTxnMarkers on partition leaders, read_committed Fetch): on the
// txn branch alone the broker does not serve InitProducerId and the test fails. It passes
// once both branches are merged.
func TestTxnSurvivesCoordinatorKill(t *testing.T) {
	c := clustertest.Start(t, 3, txnOpts...)
	const topic, parts, per = "txkill", 3, 10
	c.CreateTopic(topic, parts, 3, map[string]string{"min.insync.replicas": "2"})

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// 1. Kill between PrepareCommit and the markers. First, while leadership is where the
	// controller first put it: a restarted broker takes its preferred leaderships back, which
	// could move the coordinator away from the broker whose links are cut.
	id2 := fmt.Sprintf("prepared-%d", c.Rand.IntN(1000))
	pr2 := txnProducer(t, c, id2)
	begin(t, pr2)
	produceAll(t, pr2, topic, parts, per, "b")
	coord := txnCoordinatorOf(t, c, id2)
	leaders := map[int32]bool{}
	for p := range int32(parts) {
		leaders[c.WaitLeader(topic, p)] = true
	}
	others := c.Others(coord)
	cut := false
	for _, o := range others {
		if leaders[o] {
			c.Cut(coord, o)
			cut = true
		}
	}
	t.Logf("%s: coordinator %d, partition leaders %v, cutting its links to %v", id2, coord, leaders, others)
	if !cut {
		t.Fatalf("coordinator %d leads every partition of %s; no marker can be held back", coord, topic)
	}
	pid, epoch, err := pr2.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id2, pid, epoch, true
	eresp, err := end.RequestWith(ctx, pr2)
	if err != nil || eresp.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v %v", err, kerr.ErrorForCode(eresp.ErrorCode))
	}
	if st := describeTxn(c, id2); st != "PrepareCommit" {
		for p := range int32(parts) {
			ps, err := c.Partition(topic, p)
			t.Logf("%s-%d now: %+v %v", topic, p, ps, err)
		}
		t.Fatalf("%s is %s with its markers cut off, want PrepareCommit", id2, st)
	}
	t.Logf("%s: coordinator %d holds PrepareCommit, killing it", id2, coord)
	c.Kill(coord)
	for _, o := range others {
		c.Heal(coord, o)
	}
	waitTxnState(t, c, id2, "CompleteCommit")
	pr2.Close()
	c.Restart(coord)

	// 2. Kill during an ongoing transaction.
	id := fmt.Sprintf("ongoing-%d", c.Rand.IntN(1000))
	pr := txnProducer(t, c, id)
	begin(t, pr)
	produceAll(t, pr, topic, parts, per, "a")
	coord = txnCoordinatorOf(t, c, id)
	t.Logf("%s: coordinator %d, killing it during the transaction", id, coord)
	c.Kill(coord)
	// The client commits once a new coordinator and the partitions' new leaders are up
	// (franz-go surfaces a dial error to a dead broker it still caches instead of retrying).
	c.CheckFor(60*time.Second, "a new coordinator and leaders", func() error {
		if n := txnCoordinatorOf(t, c, id); n == coord {
			return fmt.Errorf("coordinator still %d", n)
		}
		for p := range int32(parts) {
			ps, err := c.Partition(topic, p)
			if err != nil {
				return err
			}
			if ps.Leader == coord || !c.Node(ps.Leader).Running() {
				return fmt.Errorf("%s-%d led by %d", topic, p, ps.Leader)
			}
		}
		return nil
	})
	if err := pr.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit through the new coordinator: %v", err)
	}
	waitTxnState(t, c, id, "CompleteCommit")

	got := readCommitted(t, c, topic, 2*parts*per)
	for _, tag := range []string{"a", "b"} {
		for p := range parts {
			for i := range per {
				if v := fmt.Sprintf("%s-%d-%d", tag, p, i); got[v] != 1 {
					t.Errorf("record %s read %d times by read_committed", v, got[v])
				}
			}
		}
	}
}

// txnProducer returns a transactional franz-go client that writes to the partition each
// record names and retries for up to a minute through broker kills.
func txnProducer(t *testing.T, c *clustertest.Cluster, id string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.TransactionalID(id),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(60*time.Second), kgo.RetryTimeout(60*time.Second), kgo.RequestRetries(600),
		kgo.MetadataMinAge(50*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func begin(t *testing.T, cl *kgo.Client) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
}

// produceAll writes per records "tag-p-i" to every partition of topic in the open
// transaction.
func produceAll(t *testing.T, cl *kgo.Client, topic string, parts int32, per int, tag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for p := range parts {
		for i := range per {
			r := &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-%d-%d", tag, p, i)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("transactional produce %s: %v", r.Value, err)
			}
		}
	}
}

// txnCoordinatorOf returns the live broker coordinating transactional id.
func txnCoordinatorOf(t *testing.T, c *clustertest.Cluster, id string) int32 {
	t.Helper()
	var coord int32
	c.CheckFor(30*time.Second, "a coordinator of "+id, func() error {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey, req.CoordinatorType = id, 1
		resp, err := requestLive(c, req)
		if err != nil {
			return err
		}
		r := resp.(*kmsg.FindCoordinatorResponse)
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return err
		}
		if !c.Node(r.NodeID).Running() {
			return fmt.Errorf("coordinator %d is down", r.NodeID)
		}
		coord = r.NodeID
		return nil
	})
	return coord
}

// describeTxn returns id's state as its coordinator describes it, or the error's text.
func describeTxn(c *clustertest.Cluster, id string) string {
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{id}
	resp, err := requestLive(c, req)
	if err != nil {
		return err.Error()
	}
	st := resp.(*kmsg.DescribeTransactionsResponse).TransactionStates[0]
	if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
		return err.Error()
	}
	return st.State
}

func waitTxnState(t *testing.T, c *clustertest.Cluster, id, state string) {
	t.Helper()
	c.CheckFor(60*time.Second, id+" "+state, func() error {
		if st := describeTxn(c, id); st != state {
			return fmt.Errorf("%s is %s", id, st)
		}
		return nil
	})
}

// requestLive sends req through a short-lived client seeded with the live brokers (kgo
// routes coordinator requests itself).
func requestLive(c *clustertest.Cluster, req kmsg.Request) (kmsg.Response, error) {
	var seeds []string
	for _, id := range c.Others() {
		if c.Node(id).Running() {
			seeds = append(seeds, c.Node(id).Addr())
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Request(ctx, req)
}

// readCommitted reads topic from the start with read_committed until want records arrived
// (and a second more brings none) and counts each value.
func readCommitted(t *testing.T, c *clustertest.Cluster, topic string, want int) map[string]int {
	t.Helper()
	cl := c.Client(kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	got := map[string]int{}
	n := 0
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		wait := 5 * time.Second
		if n >= want {
			wait = time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("fetch %s-%d: %v", topic, p, err)
			}
		})
		if fs.NumRecords() == 0 && n >= want {
			return got
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Value)]++
			n++
		})
	}
	t.Fatalf("read_committed returned %d records of %s, want %d", n, topic, want)
	return nil
}
