package main

import (
	"testing"

	"github.com/kchaos/kchaos/checker"
)

// serveCorruptWorkload damages a closed segment of a partition's leader while it is stopped;
// the damaged broker leads again within a second or two (preferred leader election every
// second), and the final drain, the only reader, reads the partition from the start.
const serveCorruptWorkload = `name: servecorrupt
topics: 1
partitionsPerTopic: 1
messageSize: 256
producerRate: 300
duration: 10s
replicationFactor: 3
subscriptionsPerTopic: 0
topicConfig:
  min.insync.replicas: 2
  segment.bytes: 8192
producer:
  acks: all
  idempotence: true
chaos:
  - {kind: corrupt-file, target: leader(topic-0,0), at: 4s, params: {segment: closed, flips: 4}}
`

// TestMutationServeCorrupt: with kchaos.bug.serve-corrupt a broker serves the batches a
// corrupt-file fault damaged, every consumer refuses them (CRC32C) and can read no further, and
// the checker reports the acknowledged records behind them as never reached, so the verdict
// does not pass; without it the broker finds the damage on its first read, hands the
// partition over, truncates and re-replicates, and every acknowledged record is read back.
func TestMutationServeCorrupt(t *testing.T) {
	t.Parallel()
	const election = "leader.imbalance.check.interval.seconds=1"
	clean := runConfigs(t, serveCorruptWorkload, election)["default"]
	if clean == nil || clean.Verdict != "pass" || count(clean, checker.Lost)+count(clean, checker.Unseen) != 0 {
		t.Fatalf("without the bug: %+v", clean)
	}
	buggy := runConfigs(t, serveCorruptWorkload, election, "kchaos.bug.serve-corrupt=true")["default"]
	if buggy == nil {
		t.Fatal("no verdict with the bug")
	}
	unread := count(buggy, checker.Lost) + count(buggy, checker.Unseen)
	t.Logf("serve-corrupt: clean run %s (%d acknowledged, %d read); with the bug %s, %d lost, %d unseen of %d acknowledged",
		clean.Verdict, clean.Stats.SendsOK, clean.Stats.RecordsRead, buggy.Verdict, count(buggy, checker.Lost), count(buggy, checker.Unseen), buggy.Stats.SendsOK)
	if unread == 0 || buggy.Verdict == "pass" {
		t.Fatalf("kchaos.bug.serve-corrupt went unnoticed: verdict %s, %d lost, %d unseen", buggy.Verdict, count(buggy, checker.Lost), count(buggy, checker.Unseen))
	}
}
