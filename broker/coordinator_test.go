package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchaos/kchaos/broker/group"
)

// TestPartitionForMatchesKafka checks the group -> __consumer_offsets partition mapping
// against values of Java's abs(String.hashCode()) % 50.
func TestPartitionForMatchesKafka(t *testing.T) {
	// Java: "a".hashCode() == 97; "ab".hashCode() == 3105; "polygenelubricants".hashCode() ==
	// Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
	for _, tc := range []struct {
		group string
		want  int32
	}{
		{"a", 97 % 50},
		{"ab", 3105 % 50},
		{"polygenelubricants", 0},
		{"\U0001F600", int32((31*0xD83D + 0xDE00) % 50)},
	} {
		if got := partitionFor(tc.group, 50); got != tc.want {
			t.Errorf("partitionFor(%q) = %d, want %d", tc.group, got, tc.want)
		}
	}
}

// TestUnloadLoadPartition exercises the failover hooks the replication layer will call:
// after unloadPartition the group's requests get NOT_COORDINATOR; after loadPartition its
// offsets and members are back from the log.
func TestUnloadLoadPartition(t *testing.T) {
	b := startInProcess(t, Config{NodeID: 1, Props: map[string]string{"offsets.topic.num.partitions": "5"}}, nil)
	createTestTopic(t, b, "t", 1)
	c := b.groups
	commit := func(off int64) {
		err := c.do("gg", true, func(g *group.Group, now time.Time) {
			tp := group.TopicPartition{Topic: "t", Partition: 0}
			o := group.Offset{Offset: off, LeaderEpoch: -1, CommitTime: now.UnixMilli()}
			if err := c.appendRecords(g.ID, []record{offsetRecord(g.ID, tp, o)}); err != nil {
				t.Fatal(err)
			}
			g.Offsets[tp] = o
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	commit(7)
	commit(9)
	p := partitionFor("gg", 5)
	c.unloadPartition(p)
	if _, err := c.fetchOffsets("gg", map[string][]int32{"t": {0}}, false); err != kerr.NotCoordinator {
		t.Fatalf("fetch after unload: %v, want NOT_COORDINATOR", err)
	}
	if err := c.loadPartition(p); err != nil {
		t.Fatal(err)
	}
	got, ferr := c.fetchOffsets("gg", map[string][]int32{"t": {0}}, false)
	if ferr != nil || len(got) != 1 || !got[0].ok || got[0].off.Offset != 9 {
		t.Fatalf("fetch after load: %+v %v, want offset 9", got, ferr)
	}
}
