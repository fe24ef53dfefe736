//go:build soak

package main

import (
	"testing"

	"github.com/kchaos/kchaos/checker"
)

// TestMutationsReplication (make soak: about two minutes): the replication bug switch makes the
// same real run show the anomaly it must, and with the switches off the run is clean. The
// checker is the judge. make test runs a short version of the bug run
// (TestMutationAckBeforeReplication).
func TestMutationsReplication(t *testing.T) {
	clean := runMutation(t, replicationWorkload("8s", "4s"), lazyFollowers...)
	if l, i := count(clean, checker.Lost), count(clean, checker.InconsistentOffsets); l != 0 || i != 0 || clean.Stats.SendsOK == 0 {
		t.Fatalf("without bug switches: lost %d, inconsistent-offsets %d, sends ok %d; want a clean run", l, i, clean.Stats.SendsOK)
	}
	ack := runMutation(t, replicationWorkload("8s", "4s"), append(lazyFollowers, "kchaos.bug.ack-before-replication=true")...)
	if n := count(ack, checker.Lost); n == 0 || ack.Verdict != "fail" {
		t.Errorf("kchaos.bug.ack-before-replication: lost %d, verdict %s; want acknowledged acks=all writes lost and a failed verdict", n, ack.Verdict)
	} else {
		t.Logf("ack-before-replication: %d acknowledged acks=all writes lost, verdict %s", n, ack.Verdict)
	}
}

// TestMutationReadAboveHighWatermarkSoak (make soak; make test runs a short version of the bug
// run, TestMutationReadAboveHighWatermark): consumers served above the high watermark
// read records the new leader never had, and the checker reports the offsets those reads
// contradict; the same run with the switch off is clean.
func TestMutationReadAboveHighWatermarkSoak(t *testing.T) {
	sets := []string{"replica.lag.time.max.ms=30000"}
	clean := runMutation(t, readAboveHWWorkload("12s", "3s", "6s", "5s", "4s"), sets...)
	if i, a := count(clean, checker.InconsistentOffsets), count(clean, checker.AbortedRead); i != 0 || a != 0 || clean.Stats.SendsOK == 0 {
		t.Fatalf("without bug switches: inconsistent-offsets %d, aborted-read %d, sends ok %d; want no offset read with two values", i, a, clean.Stats.SendsOK)
	}
	t.Logf("without bug switches: lost %d, inconsistent-offsets 0, verdict %s", count(clean, checker.Lost), clean.Verdict)
	bug := runMutation(t, readAboveHWWorkload("12s", "3s", "6s", "5s", "4s"), append(sets, "kchaos.bug.read-above-high-watermark=true")...)
	i, a := count(bug, checker.InconsistentOffsets), count(bug, checker.AbortedRead)
	if i+a == 0 {
		t.Fatalf("kchaos.bug.read-above-high-watermark: inconsistent-offsets %d, aborted-read %d; want reads of records the ISR never had reported", i, a)
	}
	t.Logf("read-above-high-watermark: inconsistent-offsets %d, aborted-read %d, verdict %s", i, a, bug.Verdict)
}
