package controller

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestAlterPartitionRules(t *testing.T) {
	c := newCluster(t, 4)
	c.topic("t", nil, []int32{1, 2, 3})
	c.fence(4)
	// Make the state interesting: leader 1, epochs (0, 1) after 3 left the ISR.
	c.setISR("t", 0, []int32{1, 2})
	c.want("t", 0, 1, []int32{1, 2}, 0, 1)
	id := c.img.Topics["t"].ID
	epoch1 := c.img.Brokers[1].Epoch
	ok := AlterPartitionRequest{Topic: "t", TopicID: id, Partition: 0, BrokerID: 1, BrokerEpoch: epoch1, LeaderEpoch: 0, PartitionEpoch: 1, NewISR: []int32{1, 2, 3}}

	for _, tc := range []struct {
		name string
		edit func(r *AlterPartitionRequest)
		want *kerr.Error
	}{
		{"valid expand", func(r *AlterPartitionRequest) {}, nil},
		{"valid shrink", func(r *AlterPartitionRequest) { r.NewISR = []int32{1} }, nil},
		{"unknown topic", func(r *AlterPartitionRequest) { r.Topic, r.TopicID = "nope", TopicID{} }, kerr.UnknownTopicOrPartition},
		{"unknown topic id", func(r *AlterPartitionRequest) { r.TopicID = TopicID{9, 9} }, kerr.UnknownTopicID},
		{"unknown partition", func(r *AlterPartitionRequest) { r.Partition = 1 }, kerr.UnknownTopicOrPartition},
		{"stale broker epoch", func(r *AlterPartitionRequest) { r.BrokerEpoch = epoch1 - 1 }, kerr.StaleBrokerEpoch},
		{"old leader epoch", func(r *AlterPartitionRequest) { r.LeaderEpoch = -1 }, kerr.FencedLeaderEpoch},
		{"future leader epoch", func(r *AlterPartitionRequest) { r.LeaderEpoch = 1 }, kerr.FencedLeaderEpoch},
		{"not the leader", func(r *AlterPartitionRequest) { r.BrokerID, r.BrokerEpoch = 2, -1 }, kerr.NotLeaderForPartition},
		{"stale partition epoch", func(r *AlterPartitionRequest) { r.PartitionEpoch = 0 }, kerr.InvalidUpdateVersion},
		{"ISR without the leader", func(r *AlterPartitionRequest) { r.NewISR = []int32{2, 3} }, kerr.InvalidRequest},
		{"empty ISR", func(r *AlterPartitionRequest) { r.NewISR = nil }, kerr.InvalidRequest},
		{"duplicate member", func(r *AlterPartitionRequest) { r.NewISR = []int32{1, 2, 2} }, kerr.InvalidRequest},
		{"non-replica", func(r *AlterPartitionRequest) { r.NewISR = []int32{1, 2, 4} }, kerr.InvalidRequest},
	} {
		req := ok
		req.NewISR = slices.Clone(ok.NewISR)
		tc.edit(&req)
		r, np, err := alterPartitionRecord(c.img, req)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if np.PartitionEpoch != 2 || np.LeaderEpoch != 0 || np.Leader != 1 || !slices.Equal(np.ISR, req.NewISR) {
				t.Errorf("%s: new state %+v; want ISR %v, partition epoch 2, leader epoch 0", tc.name, np, req.NewISR)
			}
			if next, err := applyRecords(c.img, c.img.Index+1, []Record{*r}); err != nil || !slices.Equal(next.Partition("t", 0).ISR, req.NewISR) {
				t.Errorf("%s: applying the record: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want.Message)
		}
	}
}

func TestAlterPartitionIneligibleReplica(t *testing.T) {
	c := newCluster(t, 3)
	c.topic("t", nil, []int32{1, 2, 3})
	c.fence(3)
	c.want("t", 0, 1, []int32{1, 2}, 0, 1)
	req := AlterPartitionRequest{Topic: "t", Partition: 0, BrokerID: 1, BrokerEpoch: -1, LeaderEpoch: 0, PartitionEpoch: 1, NewISR: []int32{1, 2, 3}}
	if _, _, err := alterPartitionRecord(c.img, req); !errors.Is(err, kerr.IneligibleReplica) {
		t.Fatalf("adding fenced broker 3: got %v, want INELIGIBLE_REPLICA", err)
	}
	c.unfence(3)
	r, _, err := alterPartitionRecord(c.img, req)
	if err != nil {
		t.Fatal(err)
	}
	c.apply([]Record{*r})
	c.want("t", 0, 1, []int32{1, 2, 3}, 0, 2)
	if s := c.img.Stats; s.ISRExpands != 1 || s.ISRShrinks != 1 {
		t.Fatalf("stats %+v; want 1 shrink, 1 expand", s)
	}
	// The same proposal again is stale now.
	if _, _, err := alterPartitionRecord(c.img, req); !errors.Is(err, kerr.InvalidUpdateVersion) {
		t.Fatalf("replayed proposal: got %v, want INVALID_UPDATE_VERSION", err)
	}
}

func TestAlterPartitionAfterLeaderChangeIsFenced(t *testing.T) {
	c := newCluster(t, 3)
	c.topic("t", nil, []int32{1, 2, 3})
	req := AlterPartitionRequest{Topic: "t", Partition: 0, BrokerID: 1, BrokerEpoch: -1, LeaderEpoch: 0, PartitionEpoch: 0, NewISR: []int32{1}}
	c.fence(1) // broker 1 was deposed but has not noticed
	c.unfence(1)
	if _, _, err := alterPartitionRecord(c.img, req); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("deposed leader's shrink: got %v, want FENCED_LEADER_EPOCH", err)
	}
	c.want("t", 0, 2, []int32{2, 3}, 1, 1)
}
