package controller

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func ids(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i + 1)
	}
	return out
}

// TestPlaceReplicasInvariants checks every combination of brokers, partitions and
// replication factor for distinct replicas, live-only placement and evenly spread leaders.
func TestPlaceReplicasInvariants(t *testing.T) {
	for nb := 1; nb <= 6; nb++ {
		live := ids(nb)
		for parts := int32(1); parts <= 13; parts++ {
			for rf := int16(1); rf <= int16(nb); rf++ {
				name := fmt.Sprintf("brokers=%d,parts=%d,rf=%d", nb, parts, rf)
				assign, err := placeReplicas("orders", live, 0, parts, rf)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if len(assign) != int(parts) {
					t.Fatalf("%s: %d assignments", name, len(assign))
				}
				leaders := map[int32]int{}
				replicaCount := map[int32]int{}
				for p, a := range assign {
					if len(a) != int(rf) {
						t.Fatalf("%s: partition %d has %v, want %d replicas", name, p, a, rf)
					}
					for i, r := range a {
						if slices.Contains(a[:i], r) {
							t.Fatalf("%s: partition %d has two replicas on broker %d: %v", name, p, r, a)
						}
						if !slices.Contains(live, r) {
							t.Fatalf("%s: partition %d placed on unknown broker %d", name, p, r)
						}
						replicaCount[r]++
					}
					leaders[a[0]]++
					// No two leaders of a topic on one broker while there are brokers to spare.
					if p < nb && leaders[a[0]] > 1 {
						t.Fatalf("%s: leaders of partitions 0..%d share broker %d: %v", name, p, a[0], assign)
					}
				}
				spreadOK(t, name+" leaders", leaders, live, 1)
				spreadOK(t, name+" replicas", replicaCount, live, int(rf))
				again, _ := placeReplicas("orders", live, 0, parts, rf)
				if !slices.EqualFunc(assign, again, slices.Equal) {
					t.Fatalf("%s: placement is not deterministic", name)
				}
			}
		}
	}
}

// spreadOK fails when the most loaded broker has more than slack more than the least.
func spreadOK(t *testing.T, name string, count map[int32]int, live []int32, slack int) {
	t.Helper()
	lo, hi := int(^uint(0)>>1), 0
	for _, id := range live {
		lo, hi = min(lo, count[id]), max(hi, count[id])
	}
	if hi-lo > slack {
		t.Fatalf("%s: uneven spread %v (max-min %d > %d)", name, count, hi-lo, slack)
	}
}

func TestPlaceReplicasStartsTopicsOnDifferentBrokers(t *testing.T) {
	firstLeaders := map[int32]bool{}
	for i := range 20 {
		a, err := placeReplicas(fmt.Sprintf("topic-%d", i), ids(5), 0, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		firstLeaders[a[0][0]] = true
	}
	if len(firstLeaders) < 3 {
		t.Fatalf("20 single-partition topics led by only %v: every topic starts on the same broker", firstLeaders)
	}
}

func TestPlaceReplicasContinuesRoundRobin(t *testing.T) {
	all, _ := placeReplicas("t", ids(4), 0, 8, 2)
	tail, _ := placeReplicas("t", ids(4), 3, 5, 2)
	if !slices.EqualFunc(all[3:], tail, slices.Equal) {
		t.Fatalf("placing partitions 3..7 later gives %v, placing them with 0..2 gives %v", tail, all[3:])
	}
}

func TestPlaceReplicasErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		live  []int32
		parts int32
		rf    int16
		want  *kerr.Error
	}{
		{"rf above live brokers", ids(2), 1, 3, kerr.InvalidReplicationFactor},
		{"no live brokers", nil, 1, 1, kerr.InvalidReplicationFactor},
		{"rf zero", ids(3), 1, 0, kerr.InvalidReplicationFactor},
		{"no partitions", ids(3), 0, 1, kerr.InvalidPartitions},
		{"negative partitions", ids(3), -3, 1, kerr.InvalidPartitions},
	} {
		_, err := placeReplicas("t", tc.live, 0, tc.parts, tc.rf)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want.Message)
		}
	}
}
