package clustertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// TestConsumeTransformProduceThroughKills copies 3×100 input records to an output topic with
// franz-go's GroupTransactSession (read_committed input, output and input offsets committed
// in one transaction, at most 25 inputs each) while the transaction coordinator is killed in
// the transaction that crosses a third of the input and the leader of an output partition in
// the one that crosses two thirds (each restarted once a transaction committed again). A session whose End fails is replaced by a new instance of the same
// transactional id, as an application would; the new instance fences the old one and aborts
// its transaction. Every input must appear exactly once in the read_committed output.
//
// This test needs the partition side of transactions from the idem branch (InitProducerId,
// transactional Produce, WriteTxnMarkers on partition leaders, read_committed Fetch): on the
// txn branch alone the broker does not serve InitProducerId and the test fails. It passes
// once both branches are merged.
func TestConsumeTransformProduceThroughKills(t *testing.T) {
	c := clustertest.Start(t, 3, append(txnOpts, groupOpts...)...)
	const in, out, parts, per = "ctp-in", "ctp-out", 3, 100
	c.CreateTopic(in, parts, 3, map[string]string{"min.insync.replicas": "2"})
	c.CreateTopic(out, parts, 3, map[string]string{"min.insync.replicas": "2"})
	produceSpread(t, c, in, parts, 0, per)
	id, group := fmt.Sprintf("ctp-%d", c.Rand.IntN(1000)), fmt.Sprintf("ctp-g-%d", c.Rand.IntN(1000))

	newSession := func() *kgo.GroupTransactSession {
		s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(c.Bootstrap()...), kgo.TransactionalID(id),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(out),
			kgo.TransactionTimeout(30*time.Second), kgo.RequestRetries(600), kgo.RetryTimeout(60*time.Second),
			kgo.MetadataMinAge(50*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
			kgo.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sess := newSession()
	defer func() { sess.Close() }()

	var killed []int32
	copied, sessions := 0, 1 // copied counts inputs in transactions End reported committed
	deadline := time.Now().Add(3 * time.Minute)
	// done reports whether the group's committed input offsets reached the input's ends.
	done := func() bool {
		offs := committedOffsets(t, c, group, in)
		for p := range int32(parts) {
			if offs[p] != per {
				return false
			}
		}
		return true
	}
	for {
		if time.Now().After(deadline) {
			t.Fatalf("copied %d of %d inputs before the deadline (%d sessions)", copied, parts*per, sessions)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := sess.PollRecords(ctx, 25)
		cancel()
		if fs.NumRecords() == 0 {
			if copied >= parts*per/2 && done() {
				break
			}
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, &kgo.Record{Value: r.Value}) })
		ctx, cancel = context.WithTimeout(context.Background(), 90*time.Second)
		for _, r := range recs {
			sess.Produce(ctx, r, nil)
		}
		// The kills land inside a transaction: after its records, before End.
		switch n := copied + len(recs); {
		case n >= per && copied < per && len(killed) == 0:
			coord := txnCoordinatorOf(t, c, id)
			t.Logf("at input %d: killing transaction coordinator %d", n, coord)
			c.Kill(coord)
			killed = append(killed, coord)
		case n >= 2*per && copied < 2*per && len(killed) == 0:
			leader := c.WaitLeader(out, 0)
			t.Logf("at input %d: killing %s-0 leader %d", n, out, leader)
			c.Kill(leader)
			killed = append(killed, leader)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		cancel()
		if err != nil {
			t.Logf("session %d: end: %v; replacing it", sessions, err)
			sess.Close()
			sess = newSession()
			sessions++
			continue
		}
		if !committed {
			continue
		}
		copied += len(recs)
		for _, k := range killed {
			c.Restart(k)
		}
		killed = nil
	}
	sess.Close()

	got := readCommitted(t, c, out, parts*per)
	for p := range int32(parts) {
		for i := range int64(per) {
			if v := value(p, i); got[v] != 1 {
				t.Errorf("input %s appears %d times in the committed output", v, got[v])
			}
		}
	}
	if len(got) != parts*per {
		t.Errorf("committed output has %d distinct values, want %d", len(got), parts*per)
	}
	t.Logf("copied %d inputs with %d session(s)", copied, sessions)
}
