package clustertest_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// produceN writes n records to topic-partition with the given acks, one at a time, and
// returns their offsets or the first error.
func produceN(t *testing.T, cl *kgo.Client, topic string, partition int32, n int, prefix string) ([]int64, error) {
	t.Helper()
	var offs []int64
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(prefix + strconv.Itoa(i))}
		err := cl.ProduceSync(ctx, r).FirstErr()
		cancel()
		if err != nil {
			return offs, err
		}
		offs = append(offs, r.Offset)
	}
	return offs, nil
}

func manual(c *clustertest.Cluster, acks kgo.Acks, opts ...kgo.Opt) *kgo.Client {
	return c.Client(append([]kgo.Opt{kgo.RequiredAcks(acks), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
}

// TestAcks1LossIsReal: the leader is cut off from its followers (they cannot fetch), acks=1
// writes succeed on it alone, the leader is killed and a follower takes over: the acknowledged
// records are gone, and the old leader truncates them when it returns.
func TestAcks1LossIsReal(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Set("replica.lag.time.max.ms", "30000"))
	c.CreateTopic("acks1", 3, 3, nil)
	ctl := c.Controller()
	part, leader := int32(-1), int32(-1)
	for p := range int32(3) {
		if l := c.WaitLeader("acks1", p); l != ctl {
			part, leader = p, l
			break
		}
	}
	if part < 0 {
		t.Fatalf("every partition is led by the controller %d", ctl)
	}
	followers := c.Others(leader)
	committed, err := produceN(t, manual(c, kgo.AllISRAcks()), "acks1", part, 10, "committed-")
	if err != nil {
		t.Fatalf("acks=all baseline: %v", err)
	}
	for _, f := range followers {
		c.Cut(f, leader)
	}
	lost, err := produceN(t, manual(c, kgo.LeaderAck()), "acks1", part, 50, "acks1-")
	if err != nil {
		t.Fatalf("acks=1 writes on the isolated leader failed: %v", err)
	}
	t.Logf("partition %d: leader %d cut off from %v; 50 acks=1 writes acknowledged at offsets %d..%d", part, leader, followers, lost[0], lost[len(lost)-1])
	c.Kill(leader)
	for _, f := range followers {
		c.Heal(f, leader)
	}
	next := c.WaitLeader("acks1", part)
	log := readAll(t, c, "acks1", part, committed[len(committed)-1]+1)
	for i, off := range committed {
		if log[off] != "committed-"+strconv.Itoa(i) {
			t.Fatalf("acks=all record %d at offset %d lost: log has %q", i, off, log[off])
		}
	}
	gone := 0
	for i, off := range lost {
		if log[off] != "acks1-"+strconv.Itoa(i) {
			gone++
		}
	}
	if gone != len(lost) {
		t.Fatalf("%d of %d acks=1 records written only on the dead leader were lost; want all", gone, len(lost))
	}
	t.Logf("new leader %d: all %d acknowledged acks=1 records are gone", next, gone)

	c.Restart(leader)
	re := regexp.MustCompile(`truncated divergent suffix.* partition=` + strconv.Itoa(int(part)) + ` .*from=(\d+) to=(\d+)`)
	c.CheckFor(20*time.Second, "the old leader's truncation", func() error {
		m := re.FindStringSubmatch(c.Node(leader).Log())
		if m == nil {
			return errf("no truncation logged")
		}
		from, _ := strconv.ParseInt(m[1], 10, 64)
		to, _ := strconv.ParseInt(m[2], 10, 64)
		if from != lost[len(lost)-1]+1 || to != lost[0] {
			t.Fatalf("old leader truncated from %d to %d; want from %d to %d", from, to, lost[len(lost)-1]+1, lost[0])
		}
		return nil
	})
	c.CheckFor(30*time.Second, "the old leader back in the ISR", func() error {
		st, err := c.Partition("acks1", part)
		if err != nil || !slices.Contains(st.ISR, leader) {
			return errf("state %+v, %v", st, err)
		}
		return nil
	})
}

// TestMinInsyncReplicas: with two of a partition's three replicas down, acks=all gets
// NOT_ENOUGH_REPLICAS and nothing is written; acks=1 still succeeds. Four brokers, so that the
// controller quorum (brokers 1..3) keeps a majority while two replicas are down.
func TestMinInsyncReplicas(t *testing.T) {
	c := clustertest.Start(t, 4)
	c.CreateTopic("minisr", 4, 3, map[string]string{"min.insync.replicas": "2"})
	part, leader, down := int32(-1), int32(-1), []int32(nil)
	for p := range int32(4) {
		l := c.WaitLeader("minisr", p)
		st, _ := c.Partition("minisr", p)
		if l != 4 && slices.Contains(st.Replicas, 4) {
			part, leader = p, l
			for _, r := range st.Replicas {
				if r != l {
					down = append(down, r)
				}
			}
			break
		}
	}
	if part < 0 {
		t.Fatal("no partition with broker 4 as a follower")
	}
	all := manual(c, kgo.AllISRAcks(), kgo.RecordRetries(0), kgo.RequestRetries(0))
	if _, err := produceN(t, all, "minisr", part, 5, "before-"); err != nil {
		t.Fatalf("acks=all with a full ISR: %v", err)
	}
	for _, id := range down {
		c.Kill(id)
	}
	// The leader's own image decides what a produce gets: until it shows the shrunken ISR the
	// write is appended and answered NOT_ENOUGH_REPLICAS_AFTER_APPEND.
	c.CheckFor(20*time.Second, "an ISR of one", func() error {
		st, err := c.PartitionAt(leader, "minisr", part)
		if err != nil || len(st.ISR) != 1 || st.Leader != leader {
			return errf("state %+v, %v", st, err)
		}
		return nil
	})
	before := endOffset(t, c.Client(), "minisr", part)
	_, err := produceN(t, all, "minisr", part, 1, "refused-")
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with ISR [%d] and min.insync.replicas=2: got %v, want NOT_ENOUGH_REPLICAS", leader, err)
	}
	one := manual(c, kgo.LeaderAck())
	offs, err := produceN(t, one, "minisr", part, 3, "acks1-")
	if err != nil {
		t.Fatalf("acks=1 with ISR of one: %v", err)
	}
	if offs[0] != before {
		t.Fatalf("the refused acks=all record was written: log end was %d, next acks=1 record got %d", before, offs[0])
	}
	t.Logf("partition %d: leader %d alone in the ISR (killed %v): acks=all refused with NOT_ENOUGH_REPLICAS, acks=1 written at %v", part, leader, down, offs)
}

// partitionLedBy finds a partition of topic led by broker leader and returns it with its
// replicas, or -1.
func partitionLedBy(c *clustertest.Cluster, topic string, partitions int32, leader int32) (int32, []int32) {
	for p := range partitions {
		st, err := c.Partition(topic, p)
		if err == nil && st.Leader == leader {
			return p, st.Replicas
		}
	}
	return -1, nil
}

// TestUncleanLeaderElection: a replica falls out of the ISR (its fetches are cut), records are
// written to the ISR, then every ISR member dies. With unclean.leader.election.enable=false the
// partition goes offline; switching it on lets the stale replica lead, and the records it never
// had are lost. Four brokers, so the controller quorum survives the two deaths.
func TestUncleanLeaderElection(t *testing.T) {
	c := clustertest.Start(t, 4, clustertest.Set("replica.lag.time.max.ms", "1500"))
	c.CreateTopic("unclean", 8, 3, nil)
	part, replicas := partitionLedBy(c, "unclean", 8, 4)
	if part < 0 {
		t.Fatal("no partition led by broker 4 (an observer)")
	}
	// The leader is broker 4, not a voter, so cutting a follower's link to it leaves the
	// follower's controller traffic alone.
	stale := replicas[c.Rand.IntN(len(replicas))]
	for stale == 4 {
		stale = replicas[c.Rand.IntN(len(replicas))]
	}
	var isr []int32
	for _, r := range replicas {
		if r != stale {
			isr = append(isr, r)
		}
	}
	all := manual(c, kgo.AllISRAcks())
	if _, err := produceN(t, all, "unclean", part, 5, "early-"); err != nil {
		t.Fatal(err)
	}
	c.Cut(stale, 4)
	written, err := produceN(t, all, "unclean", part, 20, "late-")
	if err != nil {
		t.Fatalf("acks=all writes while a follower lags: %v", err)
	}
	c.CheckFor(20*time.Second, "the stale replica out of the ISR", func() error {
		st, err := c.Partition("unclean", part)
		if err != nil || slices.Contains(st.ISR, stale) {
			return errf("state %+v, %v", st, err)
		}
		return nil
	})
	// Heal only after the ISR is dead: healed earlier, the stale replica could catch up and
	// rejoin the ISR before the kills.
	for _, id := range isr {
		c.Kill(id)
	}
	c.Heal(stale, 4)
	c.CheckFor(20*time.Second, "the partition offline", func() error {
		st, err := c.Partition("unclean", part)
		if err != nil || st.Leader != -1 {
			return errf("state %+v, %v", st, err)
		}
		return nil
	})
	// It stays offline while unclean election is off.
	time.Sleep(1500 * time.Millisecond)
	if st, _ := c.Partition("unclean", part); st.Leader != -1 {
		t.Fatalf("partition got leader %d with unclean.leader.election.enable=false and every ISR member %v dead", st.Leader, isr)
	}
	c.AlterTopicConfig("unclean", "unclean.leader.election.enable", "true")
	if l := c.WaitLeader("unclean", part); l != stale {
		t.Fatalf("unclean election chose %d, want the stale replica %d", l, stale)
	}
	log := readAll(t, c, "unclean", part, 0)
	lost := 0
	for i, off := range written {
		if log[off] != "late-"+strconv.Itoa(i) {
			lost++
		}
	}
	if lost == 0 {
		t.Fatalf("unclean election of stale replica %d lost nothing; the %d acks=all records after it fell behind should be gone", stale, len(written))
	}
	t.Logf("partition %d: ISR %v killed, stale replica %d elected uncleanly; %d of %d acknowledged acks=all records lost", part, isr, stale, lost, len(written))
}

// TestControllerFailover: killing the active controller elects a new one, and a later
// leader kill is still handled (a new leader with a higher epoch).
func TestControllerFailover(t *testing.T) {
	c := clustertest.Start(t, 4)
	old := c.Controller()
	c.CreateTopic("ctl", 8, 3, nil)
	c.Kill(old)
	var next int32
	c.CheckFor(20*time.Second, "a new active controller", func() error {
		next = c.Controller()
		if next < 0 || next == old {
			return errf("controller %d", next)
		}
		return nil
	})
	// Only one voter is down; killing another would leave the quorum without a majority, so
	// the second victim is the observer, broker 4.
	victim := int32(4)
	part, _ := partitionLedBy(c, "ctl", 8, victim)
	if part < 0 {
		t.Fatalf("no partition led by broker %d", victim)
	}
	before, err := c.Partition("ctl", part)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	c.Kill(victim)
	// Brokers apply the controller's decisions at slightly different moments; wait until the
	// broker asked shows the new leader at a higher epoch.
	var after clustertest.PartitionState
	c.CheckFor(20*time.Second, "a new leader at a higher epoch", func() error {
		after, err = c.Partition("ctl", part)
		if err != nil || after.Leader < 0 || after.Leader == victim || after.LeaderEpoch <= before.LeaderEpoch {
			return errf("state %+v (before %+v), %v", after, before, err)
		}
		return nil
	})
	leader := after.Leader
	if _, err := produceN(t, manual(c, kgo.AllISRAcks()), "ctl", part, 3, "x-"); err != nil {
		t.Fatalf("produce after failovers: %v", err)
	}
	t.Logf("controller %d killed, %d took over; leader %d of partition %d killed, %d leads at epoch %d after %s",
		old, next, victim, part, leader, after.LeaderEpoch, time.Since(killed).Round(time.Millisecond))
}
