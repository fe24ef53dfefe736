package controller

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestCreateTopicRecord(t *testing.T) {
	c := newCluster(t, 3)
	c.fence(3)
	rejectSegmentBytes := func(cfg map[string]string) error {
		if _, ok := cfg["segment.bytes"]; ok {
			return fmt.Errorf("segment.bytes is not allowed here")
		}
		return nil
	}
	c.topic("exists", nil, []int32{1})
	for _, tc := range []struct {
		name    string
		topic   string
		parts   int32
		rf      int16
		configs map[string]string
		want    *kerr.Error
	}{
		{"ok", "orders", 4, 2, map[string]string{UncleanLeaderElectionConfig: "true"}, nil},
		{"rf above live brokers (3 is fenced)", "other", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"exists", "exists", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad name", "a/b", 1, 1, nil, kerr.InvalidTopicException},
		{"empty name", "", 1, 1, nil, kerr.InvalidTopicException},
		{"no partitions", "other", 0, 1, nil, kerr.InvalidPartitions},
		{"too many partitions", "other", MaxPartitions + 1, 1, nil, kerr.InvalidPartitions},
		{"bad unclean value", "other", 1, 1, map[string]string{UncleanLeaderElectionConfig: "maybe"}, kerr.InvalidConfig},
		{"validator rejects", "other", 1, 1, map[string]string{"segment.bytes": "1"}, kerr.InvalidConfig},
	} {
		r, err := createTopicRecord(c.img, tc.topic, tc.parts, tc.rf, tc.configs, TopicID{7}, rejectSegmentBytes)
		if tc.want != nil {
			var ce *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.Message == "" {
				t.Errorf("%s: got %v, want %s with a message", tc.name, err, tc.want.Message)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c.apply([]Record{r})
		top := c.img.Topics[tc.topic]
		if len(top.Partitions) != int(tc.parts) || top.ID != (TopicID{7}) || top.Configs[UncleanLeaderElectionConfig] != "true" {
			t.Fatalf("%s: created %+v", tc.name, top)
		}
		for i, p := range top.Partitions {
			if slices.Contains(p.Replicas, 3) {
				t.Fatalf("%s: partition %d placed on fenced broker 3: %v", tc.name, i, p.Replicas)
			}
			if p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) || p.LeaderEpoch != 0 || p.PartitionEpoch != 0 {
				t.Fatalf("%s: partition %d starts as %+v", tc.name, i, p)
			}
		}
	}
}

func TestTopicNameCollision(t *testing.T) {
	c := newCluster(t, 1)
	c.topic("a.b", nil, []int32{1})
	for _, name := range []string{"a_b", "a.b"} {
		_, err := createTopicRecord(c.img, name, 1, 1, nil, TopicID{2}, nil)
		want := kerr.InvalidTopicException
		if name == "a.b" {
			want = kerr.TopicAlreadyExists
		}
		if !errors.Is(err, want) {
			t.Errorf("create %s beside a.b: %v, want %s", name, err, want.Message)
		}
	}
	if _, err := createTopicRecord(c.img, "a-b", 1, 1, nil, TopicID{3}, nil); err != nil {
		t.Errorf("create a-b beside a.b: %v", err)
	}
}

// TestManualAssignment: explicit replica assignments, as CreateTopics' ReplicaAssignment and
// CreatePartitions' Assignment give them. Broker 3 is fenced, 4 never registered.
func TestManualAssignment(t *testing.T) {
	c := newCluster(t, 3)
	c.fence(3)
	for _, tc := range []struct {
		name   string
		assign [][]int32
		want   *kerr.Error
		isr    [][]int32
	}{
		{"ok", [][]int32{{2, 1}, {1, 2}}, nil, [][]int32{{2, 1}, {1, 2}}},
		{"fenced replica out of the ISR", [][]int32{{3, 1}}, nil, [][]int32{{1}}},
		{"all fenced", [][]int32{{3}}, kerr.InvalidReplicaAssignment, nil},
		{"unregistered broker", [][]int32{{1, 4}}, kerr.InvalidReplicaAssignment, nil},
		{"broker twice", [][]int32{{1, 1}}, kerr.InvalidReplicaAssignment, nil},
		{"uneven replication", [][]int32{{1, 2}, {1}}, kerr.InvalidReplicaAssignment, nil},
		{"no replicas", [][]int32{{}}, kerr.InvalidReplicaAssignment, nil},
		{"no partitions", [][]int32{}, kerr.InvalidReplicaAssignment, nil},
	} {
		r, err := createAssignedTopicRecord(c.img, "m", tc.assign, nil, TopicID{9}, nil)
		if tc.want != nil {
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v, want %s", tc.name, err, tc.want.Message)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i, p := range r.CreateTopic.Partitions {
			if !slices.Equal(p.Replicas, tc.assign[i]) || !slices.Equal(p.ISR, tc.isr[i]) || p.Leader != tc.isr[i][0] {
				t.Errorf("%s: partition %d = %+v, want replicas %v ISR %v", tc.name, i, p, tc.assign[i], tc.isr[i])
			}
		}
	}
	c.topic("grow", nil, []int32{1, 2})
	if _, err := createPartitionsRecord(c.img, "grow", 2, []int32{1}); !errors.Is(err, kerr.InvalidReplicaAssignment) {
		t.Errorf("new partition with 1 replica on an RF=2 topic: %v", err)
	}
	if _, err := createPartitionsRecord(c.img, "grow", 3, []int32{2, 1}); !errors.Is(err, kerr.InvalidReplicaAssignment) {
		t.Errorf("one assignment for two new partitions: %v", err)
	}
	r, err := createPartitionsRecord(c.img, "grow", 2, []int32{2, 1})
	if err != nil {
		t.Fatal(err)
	}
	if p := r.CreatePartitions.Partitions[0]; !slices.Equal(p.Replicas, []int32{2, 1}) || p.Leader != 2 {
		t.Errorf("assigned new partition = %+v", p)
	}
}

func TestCreatePartitionsAlterConfigsDelete(t *testing.T) {
	c := newCluster(t, 3)
	r, err := createTopicRecord(c.img, "t", 2, 2, map[string]string{"retention.ms": "1"}, TopicID{1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.apply([]Record{r})
	if _, err := createPartitionsRecord(c.img, "t", 2); !errors.Is(err, kerr.InvalidPartitions) {
		t.Fatalf("same count: %v", err)
	}
	if _, err := createPartitionsRecord(c.img, "nope", 3); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}
	r, err = createPartitionsRecord(c.img, "t", 5)
	if err != nil {
		t.Fatal(err)
	}
	c.apply([]Record{r})
	top := c.img.Topics["t"]
	want, _ := placeReplicas("t", []int32{1, 2, 3}, 0, 5, 2)
	for i, p := range top.Partitions {
		if !slices.Equal(p.Replicas, want[i]) {
			t.Fatalf("partition %d replicas %v, want %v (round-robin continued)", i, p.Replicas, want[i])
		}
	}

	r, err = alterConfigsRecord(c.img, "t", map[string]string{"cleanup.policy": "compact"}, []string{"retention.ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.apply([]Record{r})
	if got := c.img.Topics["t"].Configs; len(got) != 1 || got["cleanup.policy"] != "compact" {
		t.Fatalf("configs %v", got)
	}
	if _, err := alterConfigsRecord(c.img, "t", map[string]string{UncleanLeaderElectionConfig: "yes please"}, nil, nil); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}

	r, err = deleteTopicRecord(c.img, "t")
	if err != nil {
		t.Fatal(err)
	}
	c.apply([]Record{r})
	if c.img.Topics["t"] != nil {
		t.Fatal("topic still there after delete")
	}
	if _, err := deleteTopicRecord(c.img, "t"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v", err)
	}
}
