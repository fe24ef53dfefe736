package controller

import (
	"hash/fnv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// placeReplicas assigns replicas for partitions first..first+n-1 of a topic over the live
// brokers (ascending ids), rf replicas each. It is pure and deterministic:
//
//   - the leader (replicas[0]) of partition p is live[(start+p) mod len(live)], where start
//     is derived from the topic name, so the leaders of one topic are spread round-robin and no
//     two share a broker while p < len(live), and different topics start on different brokers;
//   - followers are the brokers after the leader at distinct offsets 1..len(live)-1, rotated by
//     one every full round of leaders (Kafka's "second replica shift"), so follower sets vary;
//   - no partition ever has two replicas on one broker.
//
// It fails with INVALID_REPLICATION_FACTOR when rf is below 1 or above the live broker count,
// and INVALID_PARTITIONS when n is below 1.
func placeReplicas(topic string, live []int32, first, n int32, rf int16) ([][]int32, error) {
	if n < 1 {
		return nil, errorf(kerr.InvalidPartitions, "partition count %d must be at least 1", n)
	}
	if rf < 1 {
		return nil, errorf(kerr.InvalidReplicationFactor, "replication factor %d must be at least 1", rf)
	}
	if int(rf) > len(live) {
		return nil, errorf(kerr.InvalidReplicationFactor, "replication factor %d is larger than the %d available brokers", rf, len(live))
	}
	nb := int32(len(live))
	start := int32(placementStart(topic) % uint32(nb))
	out := make([][]int32, 0, n)
	for p := first; p < first+n; p++ {
		leader := (start + p) % nb
		replicas := make([]int32, 0, rf)
		replicas = append(replicas, live[leader])
		if nb > 1 {
			shift := (p / nb) % (nb - 1)
			for j := int32(1); j < int32(rf); j++ {
				off := 1 + (shift+j-1)%(nb-1)
				replicas = append(replicas, live[(leader+off)%nb])
			}
		}
		out = append(out, replicas)
	}
	return out, nil
}

// placementStart is the deterministic round-robin start for a topic's leaders.
func placementStart(topic string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(topic))
	return h.Sum32()
}

// validTopicName applies Kafka's rules: 1..249 characters of [a-zA-Z0-9._-], not "." or "..".
func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return errorf(kerr.InvalidTopicException, "topic name %q is illegal", name)
	}
	if len(name) > 249 {
		return errorf(kerr.InvalidTopicException, "topic name is longer than 249 characters")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errorf(kerr.InvalidTopicException, "topic name %q contains %q; legal characters are ASCII alphanumerics, '.', '_' and '-'", name, c)
		}
	}
	return nil
}
