//go:build soak

package main

import (
	"testing"

	"github.com/kchaos/kchaos/checker"
)

// mutationWorkload is a short acks=all run on RF=3 whose followers fetch lazily (so the high
// watermark trails the leader by up to 300 ms) with the partition leader killed mid-run.
const mutationWorkload = `name: mutation
topics: 1
partitionsPerTopic: 1
messageSize: 256
producersPerTopic: 1
producerRate: 2000
subscriptionsPerTopic: 1
consumerPerSubscription: 1
duration: 8s
replicationFactor: 3
topicConfig:
  min.insync.replicas: 2
producer:
  acks: all
  linger: 1ms
  retries: 10
consumer:
  mode: group
  commit: manual-after-processing
chaos:
  - kind: kill
    target: leader(topic-0,0)
    at: 4s
    for: 2s
`

// lazyFollowers makes followers fetch every 300 ms instead of at once.
var lazyFollowers = []string{"replica.fetch.min.bytes=100000000", "replica.fetch.wait.max.ms=300"}

// TestMutationsReplication (make soak: about two minutes): the replication bug switch makes the same real run show the
// anomaly it must, and with the switches off the run is clean. The checker is the judge.
func TestMutationsReplication(t *testing.T) {
	clean := runMutation(t, mutationWorkload, lazyFollowers...)
	if l, i := count(clean, checker.Lost), count(clean, checker.InconsistentOffsets); l != 0 || i != 0 || clean.Stats.SendsOK == 0 {
		t.Fatalf("without bug switches: lost %d, inconsistent-offsets %d, sends ok %d; want a clean run", l, i, clean.Stats.SendsOK)
	}
	ack := runMutation(t, mutationWorkload, append(lazyFollowers, "kchaos.bug.ack-before-replication=true")...)
	if n := count(ack, checker.Lost); n == 0 || ack.Verdict != "fail" {
		t.Errorf("kchaos.bug.ack-before-replication: lost %d, verdict %s; want acknowledged acks=all writes lost and a failed verdict", n, ack.Verdict)
	} else {
		t.Logf("ack-before-replication: %d acknowledged acks=all writes lost, verdict %s", n, ack.Verdict)
	}
}
