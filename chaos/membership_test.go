package chaos_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/internal/e2e"
)

// replicasOf returns topic-p's replicas, leader and ISR as the cluster reports them.
func replicasOf(t *testing.T, rc *replCluster, topic string, p int32) chaos.PartitionView {
	t.Helper()
	return rc.mustPartition(0, topic, p)
}

// TestMembershipFaults moves a partition's replicas (grow to four, shrink back to three),
// shrinks one, elects a preferred leader and decommissions a broker on a real cluster of four,
// and checks that each takes effect through the admin API and heals back to the replicas the
// partition had, with every acknowledged record readable.
func TestMembershipFaults(t *testing.T) {
	c := e2e.StartCluster(t, 4, e2e.Set("leader.imbalance.check.interval.seconds", "3600"))
	rc := &replCluster{Cluster: c, t: t}
	c.CreateTopic("m", 2, 3)
	p := producer(t, c, kgo.RequiredAcks(kgo.AllISRAcks()))
	produceAll(t, p, "m", seqValues("a", 50))
	before := replicasOf(t, rc, "m", 0)

	waitReplicas := func(what string, ok func(chaos.PartitionView) bool) time.Duration {
		t.Helper()
		return e2e.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
			pv := replicasOf(t, rc, "m", 0)
			if !ok(pv) || len(pv.ISR) != len(pv.Replicas) {
				return fmt.Errorf("%s: replicas %v ISR %v", what, pv.Replicas, pv.ISR)
			}
			return nil
		})
	}
	for _, mode := range []string{"move", "shrink"} {
		start := time.Now()
		r := c.Fault(chaos.Fault{Kind: chaos.Reassign, Target: chaos.Target{Sel: chaos.SelLeader, Topic: "m", Partition: 0}, Params: map[string]string{"mode": mode}})
		applied := time.Since(start)
		effect := waitReplicas(mode+" done", func(pv chaos.PartitionView) bool {
			if mode == "shrink" {
				return len(pv.Replicas) == 2
			}
			return len(pv.Replicas) == 3 && !slices.Equal(sorted(pv.Replicas), sorted(before.Replicas))
		})
		moved := replicasOf(t, rc, "m", 0)
		produceAll(t, p, "m", seqValues(mode, 20))
		healStart := time.Now()
		c.Heal(r)
		waitReplicas("back", func(pv chaos.PartitionView) bool { return slices.Equal(sorted(pv.Replicas), sorted(before.Replicas)) })
		t.Logf("reassign %s: %v -> %v; Apply %v, done %v later; healed back to %v within %v", mode, before.Replicas, moved.Replicas,
			applied, effect, before.Replicas, time.Since(healStart))
	}

	// Preferred election: the replica list's first broker leads after the fault.
	pv := replicasOf(t, rc, "m", 1)
	if old := pv.Leader; old == pv.Replicas[0] {
		// Make another broker the leader by killing the preferred one: it loses leadership.
		// Every wait names the new state, since a broker whose metadata lags may still
		// show the old leader with the old ISR of three.
		c.Kill(old)
		c.WaitOnLeader("m", 1)
		c.Restart(old)
		e2e.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			pv = replicasOf(t, rc, "m", 1)
			if len(pv.ISR) != 3 || pv.Leader == old {
				return fmt.Errorf("leader %d ISR %v; want a leader other than %d and an ISR of 3", pv.Leader, pv.ISR, old)
			}
			return nil
		})
	}
	if pv.Leader == pv.Replicas[0] {
		t.Fatalf("partition 1 led by its preferred replica %d after its restart: no election to make", pv.Leader)
	}
	start := time.Now()
	r := c.Fault(chaos.Fault{Kind: chaos.ElectLeader, Target: chaos.Target{Sel: chaos.SelLeader, Topic: "m", Partition: 1}})
	e2e.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if got := replicasOf(t, rc, "m", 1); got.Leader != pv.Replicas[0] {
			return fmt.Errorf("leader %d, preferred %d", got.Leader, pv.Replicas[0])
		}
		return nil
	})
	c.Heal(r)
	t.Logf("elect-leader preferred: leader %d -> %d within %v", pv.Leader, pv.Replicas[0], time.Since(start))

	// Decommission: the broker's replicas move to the others and it stops; heal starts it and
	// moves them back.
	victim := before.Replicas[len(before.Replicas)-1]
	start = time.Now()
	r = c.Fault(chaos.Fault{Kind: chaos.Decommission, Target: chaos.Target{Sel: chaos.SelBroker, Broker: victim}})
	left := time.Since(start)
	for _, part := range []int32{0, 1} {
		if got := replicasOf(t, rc, "m", part); slices.Contains(got.Replicas, victim) {
			t.Errorf("m-%d still on decommissioned broker %d: %v", part, victim, got.Replicas)
		}
	}
	if c.Node(victim).Running() {
		t.Errorf("decommissioned broker %d still running", victim)
	}
	produceAll(t, p, "m", seqValues("d", 20))
	healStart := time.Now()
	c.Heal(r)
	waitReplicas("decommission undone", func(pv chaos.PartitionView) bool { return slices.Equal(sorted(pv.Replicas), sorted(before.Replicas)) })
	t.Logf("decommission broker %d: replicas moved and broker stopped in %v; back in %v", victim, left, time.Since(healStart))
	// Add-broker: a fifth broker joins and takes a replica of m-0; heal moves it back and
	// stops the new broker.
	start = time.Now()
	r = c.Fault(chaos.Fault{Kind: chaos.AddBroker, Target: chaos.Target{Sel: chaos.SelLeader, Topic: "m", Partition: 0}})
	joined := time.Since(start)
	took := waitReplicas("replica on broker 5", func(pv chaos.PartitionView) bool { return slices.Contains(pv.Replicas, 5) })
	produceAll(t, p, "m", seqValues("n", 20))
	healStart = time.Now()
	c.Heal(r)
	waitReplicas("add-broker undone", func(pv chaos.PartitionView) bool { return slices.Equal(sorted(pv.Replicas), sorted(before.Replicas)) })
	t.Logf("add-broker: broker 5 joined and got a replica of m-0 in %v (+%v in sync); moved back and stopped in %v", joined, took, time.Since(healStart))
	got := c.ReadPartition("m", 0, "n19")
	if len(got) < 50 {
		t.Errorf("read %d records of m-0 after the faults", len(got))
	}
}

func sorted(ids []int32) []int32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
