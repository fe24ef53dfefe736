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
// broker deaths and returns, leader ISR changes, preferred-leader runs and topic creation,
// and checks after every step what must always hold:
//
//   - the ISR is a non-empty subset of the replicas without duplicates;
//   - a leader is live and in the ISR; a partition is offline only when no live in-sync
//     replica exists (and, with unclean election on, no live replica at all);
//   - a fenced broker is in an ISR only as its last member;
//   - leader and partition epochs never go down, and the partition epoch grows on every change.
func TestRandomDecisionsKeepInvariants(t *testing.T) {
	rng := testkit.Rand(t)
	const brokers = 5
	c := newCluster(t, brokers)
	c.topic("u", map[string]string{UncleanLeaderElectionConfig: "true"}, []int32{1, 2, 3}, []int32{4, 5, 1})
	c.topic("c", nil, []int32{2, 3, 4}, []int32{5, 1, 2}, []int32{3, 4, 5})

	for step := range 2000 {
		before := c.img
		var what string
		switch k := rng.IntN(10); {
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
		}
		if err := checkInvariants(before, c.img, c.pol); err != nil {
			t.Fatalf("step %d (%s): %v", step, what, err)
		}
	}
	t.Logf("stats after 2000 steps: %+v", c.img.Stats)
	if c.img.Stats.LeaderElections == 0 || c.img.Stats.ISRExpands == 0 {
		t.Fatalf("the random walk exercised too little: %+v", c.img.Stats)
	}
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
					if after.Live(r) && (p.InISR(r) || pol.unclean(t)) {
						return fmt.Errorf("%s: offline although broker %d could lead", where, r)
					}
				}
			}
			if bt := before.Topics[name]; bt != nil && i < len(bt.Partitions) {
				old := bt.Partitions[i]
				if p.LeaderEpoch < old.LeaderEpoch || p.PartitionEpoch < old.PartitionEpoch {
					return fmt.Errorf("%s: epochs went down from %+v", where, *old)
				}
				changed := p.Leader != old.Leader || !slices.Equal(p.ISR, old.ISR)
				if changed != (p.PartitionEpoch > old.PartitionEpoch) {
					return fmt.Errorf("%s: partition epoch out of step with changes from %+v", where, *old)
				}
				if (p.Leader != old.Leader) != (p.LeaderEpoch > old.LeaderEpoch) {
					return fmt.Errorf("%s: leader epoch out of step with leader changes from %+v", where, *old)
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
