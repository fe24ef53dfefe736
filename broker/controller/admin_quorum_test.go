package controller

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestReassignmentSurvivesControllerFailover: a reassignment started on one active
// controller is still in flight on the next one (the adding and removing replicas are in the
// replicated image), which completes it when the leader reports the new replica in sync.
// Elections and dynamic broker configs go through the same Raft path.
func TestReassignmentSurvivesControllerFailover(t *testing.T) {
	q := newQuorum(t, 3, 0, nil)
	act := q.waitActive()
	epochs := map[int32]int64{}
	for id := int32(1); id <= 4; id++ {
		epochs[id] = q.register(id)
	}
	q.waitImage(act.NodeID(), "4 live brokers", func(img *Image) bool { return len(img.LiveBrokers()) == 4 })
	if _, err := act.CreateTopicAssigned("t", [][]int32{{1, 2, 3}, {2, 3, 1}}, nil, false); err != nil {
		t.Fatal(err)
	}

	res, err := act.AlterPartitionReassignments([]ReassignRequest{
		{Topic: "t", Partition: 0, Replicas: []int32{1, 2, 4}},
		{Topic: "t", Partition: 1, Replicas: []int32{2, 2}},
		{Topic: "t", Partition: 0, Replicas: []int32{4}},
		{Topic: "t", Partition: 1, Replicas: nil},
		{Topic: "missing", Partition: 0, Replicas: []int32{1}},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []*kerr.Error{nil, kerr.InvalidReplicaAssignment, kerr.InvalidReplicationFactor, kerr.NoReassignmentInProgress, kerr.UnknownTopicOrPartition}
	for i, r := range res {
		if (want[i] == nil) != (r.Err == nil) || (want[i] != nil && !errors.Is(r.Err, want[i])) {
			t.Fatalf("reassignment %d (%s-%d): %v, want %v", i, r.Topic, r.Partition, r.Err, want[i])
		}
	}
	if _, err := act.AlterBrokerConfigs("", map[string]string{"log.retention.ms": "60000"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := act.AlterBrokerConfigs("one", map[string]string{"log.retention.ms": "1"}, nil, false); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("broker configs of resource %q: %v, want INVALID_REQUEST", "one", err)
	}

	old := act.NodeID()
	q.stop(old)
	act = q.waitActive()
	img := q.waitImage(act.NodeID(), "the reassignment", func(img *Image) bool { return img.Partition("t", 0).Reassigning() })
	p := img.Partition("t", 0)
	if !slices.Equal(p.Replicas, []int32{1, 2, 4, 3}) || !slices.Equal(p.AddingReplicas, []int32{4}) || !slices.Equal(p.RemovingReplicas, []int32{3}) {
		t.Fatalf("after failover: %+v", p)
	}
	if img.BrokerConfigs[""]["log.retention.ms"] != "60000" {
		t.Fatalf("after failover, broker configs %v", img.BrokerConfigs)
	}
	if got := img.Reassignments(nil); len(got) != 1 || got[0].Topic != "t" || got[0].Partition != 0 {
		t.Fatalf("Reassignments: %+v", got)
	}
	if got := img.Reassignments(map[string][]int32{"t": {1}}); len(got) != 0 {
		t.Fatalf("Reassignments of t-1: %+v", got)
	}

	// The leader reports 4 in sync: the reassignment completes and 3 leaves.
	np, err := act.AlterPartition(AlterPartitionRequest{Topic: "t", Partition: 0, BrokerID: p.Leader, BrokerEpoch: epochs[p.Leader],
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{1, 2, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(np.Replicas, []int32{1, 2, 4}) || !slices.Equal(np.ISR, []int32{1, 2, 4}) || np.Reassigning() || np.LeaderEpoch != p.LeaderEpoch+1 {
		t.Fatalf("after the new replica joined the ISR: %+v", np)
	}

	// Leadership of t-1 (preferred 2) moves to 3 when 2 is fenced; a preferred election
	// returns it once 2 is back in sync. Partitions that need no election are left out.
	if err := act.FenceBroker(2); err != nil {
		t.Fatal(err)
	}
	if l := act.Image().Partition("t", 1).Leader; l != 3 {
		t.Fatalf("t-1 led by %d after fencing 2, want 3", l)
	}
	// Broker 2's next heartbeat unfences it.
	q.waitImage(act.NodeID(), "broker 2 live", func(img *Image) bool { return img.Live(2) })
	p = act.Image().Partition("t", 1)
	if _, err := act.AlterPartition(AlterPartitionRequest{Topic: "t", Partition: 1, BrokerID: 3, BrokerEpoch: epochs[3],
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: append(slices.Clone(p.ISR), 2)}); err != nil {
		t.Fatal(err)
	}
	res, err = act.ElectLeaders(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Partition != 1 || res[0].Err != nil {
		t.Fatalf("preferred election of all partitions: %+v", res)
	}
	if l := act.Image().Partition("t", 1).Leader; l != 2 {
		t.Fatalf("t-1 led by %d after the preferred election, want 2", l)
	}
	res, err = act.ElectLeaders(true, []TopicPartition{{"t", 1}, {"t", 9}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, kerr.ElectionNotNeeded) || !errors.Is(res[1].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unclean election of a led partition and a missing one: %+v", res)
	}
}
