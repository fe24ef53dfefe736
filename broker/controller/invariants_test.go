package controller

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchaos/kchaos/internal/testkit"
)

// TestRandomDecisionsKeepInvariants drives the pure decisions with a seeded random mix of
// broker deaths and returns, leader ISR changes, preferred-leader runs, partition
// reassignments and their cancellation, and preferred and unclean elections, and checks after
// every step what must always hold:
//
//   - the ISR is a non-empty subset of the replicas without duplicates; adding and removing
//     replicas are disjoint replicas, and a reassignment whose targets are all in sync has
//     completed;
//   - a leader is live and in the ISR; a partition is offline only when no live in-sync
//     replica exists (and, with unclean election on, no live replica at all);
//   - a fenced broker is in an ISR only as its last member;
//   - leader and partition epochs never go down, the partition epoch grows on every change and
//     the leader epoch on every leader change and replica removal.
func TestRandomDecisionsKeepInvariants(t *testing.T) {
	rng := testkit.Rand(t)
	const brokers = 5
	c := newCluster(t, brokers)
	c.topic("u", map[string]string{UncleanLeaderElectionConfig: "true"}, []int32{1, 2, 3}, []int32{4, 5, 1})
	c.topic("c", nil, []int32{2, 3, 4}, []int32{5, 1, 2}, []int32{3, 4, 5})

	for step := range 2000 {
		before := c.img
		var what string
		switch k := rng.IntN(12); {
		case k < 3:
			id := int32(rng.IntN(brokers) + 1)
			what = fmt.Sprintf("fence %d", id)
			c.fence(id)
		case k < 6:
			id := int32(rng.IntN(brokers) + 1)
			what = fmt.Sprintf("unfence %d", id)
			c.unfence(id)
		case k < 9:
			what = c.randomAlterPartition(rng)
		case k < 10:
			what = "preferred leaders"
			c.apply(preferredLeaderRecords(c.img))
		case k < 11:
			what = c.randomReassign(rng, brokers)
		case k < 12:
			what = c.randomElection(rng)
		}
		if err := checkInvariants(before, c.img, c.pol); err != nil {
			t.Fatalf("step %d (%s): %v", step, what, err)
		}
	}
	t.Logf("stats after 2000 steps: %+v; reassignments started %d, completed %d", c.img.Stats, c.reassigned, c.completed)
	if c.img.Stats.LeaderElections == 0 || c.img.Stats.ISRExpands == 0 || c.reassigned == 0 || c.completed == 0 {
		t.Fatalf("the random walk exercised too little: %+v; reassignments started %d, completed %d", c.img.Stats, c.reassigned, c.completed)
	}
}

// randomPartition picks a random partition.
func (c *cluster) randomPartition(rng *rand.Rand) (*Topic, int32) {
	names := c.img.sortedTopicNames()
	t := c.img.Topics[names[rng.IntN(len(names))]]
	return t, int32(rng.IntN(len(t.Partitions)))
}

// randomReassign reassigns a random partition to 1-3 random brokers, or cancels its
// reassignment in flight.
func (c *cluster) randomReassign(rng *rand.Rand, brokers int) string {
	t, idx := c.randomPartition(rng)
	var target []int32
	if !c.img.Partition(t.Name, idx).Reassigning() || rng.IntN(3) > 0 {
		for _, id := range rng.Perm(brokers)[:1+rng.IntN(3)] {
			target = append(target, int32(id+1))
		}
	}
	rec, err := reassignRecord(c.img, c.pol, t.Name, idx, target, true)
	what := fmt.Sprintf("reassign %s-%d to %v", t.Name, idx, target)
	if err != nil {
		if !errors.Is(err, kerr.InvalidReplicaAssignment) {
			c.t.Fatalf("%s: %v", what, err)
		}
		return what + ": " + err.Error()
	}
	if rec != nil {
		c.apply([]Record{*rec})
		if target != nil {
			c.reassigned++
		}
	}
	if target != nil && !c.img.Partition(t.Name, idx).Reassigning() {
		c.completed++
	}
	return what
}

// randomElection runs a preferred or unclean election of a random partition.
func (c *cluster) randomElection(rng *rand.Rand) string {
	t, idx := c.randomPartition(rng)
	unclean := rng.IntN(2) == 0
	rec, err := electionRecord(c.img, t.Name, idx, unclean)
	what := fmt.Sprintf("elect %s-%d unclean=%v", t.Name, idx, unclean)
	if err != nil {
		return what + ": " + err.Error()
	}
	c.apply([]Record{*rec})
	return what
}

// randomAlterPartition has a random partition's leader propose dropping or adding one live
// replica to its ISR.
func (c *cluster) randomAlterPartition(rng *rand.Rand) string {
	names := c.img.sortedTopicNames()
	t := c.img.Topics[names[rng.IntN(len(names))]]
	idx := int32(rng.IntN(len(t.Partitions)))
	p := t.Partitions[idx]
	if p.Leader == NoLeader {
		return "alter partition: offline"
	}
	isr := slices.Clone(p.ISR)
	r := p.Replicas[rng.IntN(len(p.Replicas))]
	switch {
	case r == p.Leader:
	case slices.Contains(isr, r):
		isr = slices.DeleteFunc(isr, func(x int32) bool { return x == r })
	default:
		isr = append(isr, r)
	}
	req := AlterPartitionRequest{Topic: t.Name, Partition: idx, BrokerID: p.Leader, BrokerEpoch: c.img.Brokers[p.Leader].Epoch,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: isr}
	rec, _, err := alterPartitionRecord(c.img, req)
	if errors.Is(err, kerr.IneligibleReplica) {
		return fmt.Sprintf("alter %s-%d to %v: ineligible", t.Name, idx, isr)
	}
	if err != nil {
		c.t.Fatalf("alter %s-%d to %v by its leader: %v", t.Name, idx, isr, err)
	}
	if rec != nil {
		c.apply([]Record{*rec})
	}
	return fmt.Sprintf("alter %s-%d to %v", t.Name, idx, isr)
}

func checkInvariants(before, after *Image, pol policy) error {
	for _, name := range after.sortedTopicNames() {
		t := after.Topics[name]
		for i, p := range t.Partitions {
			where := fmt.Sprintf("%s-%d %+v", name, i, *p)
			if len(p.ISR) == 0 {
				return fmt.Errorf("%s: empty ISR", where)
			}
			for j, r := range p.ISR {
				if !slices.Contains(p.Replicas, r) || slices.Contains(p.ISR[:j], r) {
					return fmt.Errorf("%s: ISR is not a set of replicas", where)
				}
				if !after.Live(r) && len(p.ISR) > 1 {
					return fmt.Errorf("%s: fenced broker %d in a multi-member ISR", where, r)
				}
			}
			if p.Leader != NoLeader && (!after.Live(p.Leader) || !p.InISR(p.Leader)) {
				return fmt.Errorf("%s: leader is not a live in-sync replica", where)
			}
			if p.Leader == NoLeader {
				for _, r := range p.Replicas {
					if after.Live(r) && (p.InISR(r) || pol.unclean(after, t)) {
						return fmt.Errorf("%s: offline although broker %d could lead", where, r)
					}
				}
			}
			if err := checkPartition(p); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
			if p.Reassigning() {
				target, isr := p.TargetReplicas(), without(p.ISR, p.RemovingReplicas)
				if len(isr) > 0 && containsAll(isr, target) {
					return fmt.Errorf("%s: every target replica is in sync but the reassignment is still in flight", where)
				}
			}
			if bt := before.Topics[name]; bt != nil && i < len(bt.Partitions) {
				old := bt.Partitions[i]
				if p.LeaderEpoch < old.LeaderEpoch || p.PartitionEpoch < old.PartitionEpoch {
					return fmt.Errorf("%s: epochs went down from %+v", where, *old)
				}
				changed := p.Leader != old.Leader || !slices.Equal(p.ISR, old.ISR) || !slices.Equal(p.Replicas, old.Replicas) ||
					!slices.Equal(p.AddingReplicas, old.AddingReplicas) || !slices.Equal(p.RemovingReplicas, old.RemovingReplicas)
				if changed != (p.PartitionEpoch > old.PartitionEpoch) {
					return fmt.Errorf("%s: partition epoch out of step with changes from %+v", where, *old)
				}
				// The leader epoch grows when the leader changes, and when replicas are removed
				// (KRaft fences the removed replicas that way).
				bump := p.Leader != old.Leader || !containsAll(p.Replicas, old.Replicas)
				if bump != (p.LeaderEpoch > old.LeaderEpoch) {
					return fmt.Errorf("%s: leader epoch out of step with leader and replica changes from %+v", where, *old)
				}
			}
		}
	}
	return nil
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int16
	}{
		{nil, 0},
		{errorf(kerr.InvalidConfig, "x"), kerr.InvalidConfig.Code},
		{fmt.Errorf("wrapped: %w", errorf(kerr.TopicAlreadyExists, "x")), kerr.TopicAlreadyExists.Code},
		{&NotControllerError{LeaderID: 2}, kerr.NotController.Code},
		{errors.New("disk on fire"), kerr.UnknownServerError.Code},
	} {
		if got := ErrorCode(tc.err); got != tc.want {
			t.Errorf("ErrorCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
