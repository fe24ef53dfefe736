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

// readAboveHWWorkload: acks=all on RF=3 while the leader is cut off from its followers (the
// ISR does not shrink: replica.lag.time.max.ms is 30 s), so the records it appends stay above
// the high watermark; the controller fences it and a follower that never had them takes over.
// The Sarama producer does not retry (retries 0), so those sends end indeterminate and the new
// leader writes other records at their offsets: only a consumer served above the high
// watermark ever sees one offset hold two values (inconsistent-offsets).
const readAboveHWWorkload = `name: readabovehw
topics: 1
partitionsPerTopic: 1
messageSize: 128
producersPerTopic: 1
producerRate: 1000
subscriptionsPerTopic: 1
consumerPerSubscription: 1
duration: 12s
replicationFactor: 3
topicConfig:
  min.insync.replicas: 2
driver: sarama
producer:
  acks: all
  linger: 50ms
  retries: 0
  requestTimeout: 2s
consumer:
  mode: group
  commit: manual-after-processing
chaos:
  - kind: partition
    target: leader(topic-0,0)
    params: {from: followers(topic-0,0)}
    at: 3s
    for: 6s
  - kind: kill
    target: leader(topic-0,0)
    at: 5s
    for: 4s
`

// TestMutationReadAboveHighWatermark (make soak): consumers served above the high watermark
// read records the new leader never had, and the checker reports the offsets those reads
// contradict; the same run with the switch off is clean.
func TestMutationReadAboveHighWatermark(t *testing.T) {
	sets := []string{"replica.lag.time.max.ms=30000"}
	clean := runMutation(t, readAboveHWWorkload, sets...)
	if i, a := count(clean, checker.InconsistentOffsets), count(clean, checker.AbortedRead); i != 0 || a != 0 || clean.Stats.SendsOK == 0 {
		t.Fatalf("without bug switches: inconsistent-offsets %d, aborted-read %d, sends ok %d; want no offset read with two values", i, a, clean.Stats.SendsOK)
	}
	t.Logf("without bug switches: lost %d, inconsistent-offsets 0, verdict %s", count(clean, checker.Lost), clean.Verdict)
	bug := runMutation(t, readAboveHWWorkload, append(sets, "kchaos.bug.read-above-high-watermark=true")...)
	i, a := count(bug, checker.InconsistentOffsets), count(bug, checker.AbortedRead)
	if i+a == 0 {
		t.Fatalf("kchaos.bug.read-above-high-watermark: inconsistent-offsets %d, aborted-read %d; want reads of records the ISR never had reported", i, a)
	}
	t.Logf("read-above-high-watermark: inconsistent-offsets %d, aborted-read %d, verdict %s", i, a, bug.Verdict)
}
