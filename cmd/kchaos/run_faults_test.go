package main

import (
	"strings"
	"testing"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/internal/e2e"
	"github.com/kchaos/kchaos/loadgen"
)

// runConfigs is e2e.RunWorkload for runs whose faults must all apply; it needs at least one
// verdict.
func runConfigs(t *testing.T, workload string, sets ...string) map[string]*checker.Result {
	t.Helper()
	res, stdout := e2e.RunWorkload(t, workload, sets...)
	if strings.Contains(stdout, "fault not applied") {
		t.Errorf("a fault was not applied:\n%s", stdout)
	}
	if len(res) == 0 {
		t.Fatalf("no verdicts:\n%s", stdout)
	}
	return res
}

// dropResponsesWorkload is claim 12's run: acks=all on three replicas, and half of the
// leader's produce answers lost for 2 s. producer adds lines to the producer section, tail
// lines at the end (a matrix).
func dropResponsesWorkload(name, producer, tail string) string {
	return "name: " + name + `
topics: 1
partitionsPerTopic: 1
messageSize: 128
producerRate: 500
duration: 6s
replicationFactor: 3
topicConfig:
  min.insync.replicas: 2
producer:
  acks: all
  linger: 5ms
` + producer + `consumer:
  commit: manual-after-processing
chaos:
  - {kind: drop-responses, target: leader(topic-0,0), params: {rate: 50%}, at: 2s, for: 2s}
` + tail
}

// TestDropResponsesDuplicatesWithoutIdempotence (claim 12): lost produce acknowledgements
// make the producer retry batches the broker already wrote; the checker counts the copies
// as duplicates, and with idempotence the broker recognises the retries and there are none.
func TestDropResponsesDuplicatesWithoutIdempotence(t *testing.T) {
	t.Parallel()
	res := runConfigs(t, dropResponsesWorkload("dropresp", "", "matrix:\n  idempotence: [false, true]\n"))
	if len(res) != 2 {
		t.Fatalf("want 2 configs, got %d", len(res))
	}
	for name, r := range res {
		dup := count(r, checker.Duplicate)
		idem := r.Run != nil && r.Run.Idempotent
		t.Logf("%s: duplicates %d, sends ok %d, lost %d", name, dup, r.Stats.SendsOK, count(r, checker.Lost))
		switch {
		case r.Stats.SendsOK == 0:
			t.Errorf("%s: nothing acknowledged", name)
		case idem && dup != 0:
			t.Errorf("%s: %d duplicates with idempotence", name, dup)
		case !idem && dup == 0:
			t.Errorf("%s: no duplicates from retried batches without idempotence", name)
		}
		if l := count(r, checker.Lost); l != 0 {
			t.Errorf("%s: %d lost", name, l)
		}
	}
}

// TestConsumerCrashFromWorkload (claim 14's machinery): crash-consumer in a workload's chaos
// section reaches the load generator's consumer, which dies and restarts; the history
// records the crash and the checker counts it.
func TestConsumerCrashFromWorkload(t *testing.T) {
	t.Parallel()
	res := runConfigs(t, `name: crashcons
topics: 1
partitionsPerTopic: 2
messageSize: 128
producerRate: 300
consumerPerSubscription: 2
duration: 5s
consumer:
  mode: group
  commit: manual-after-processing
chaos:
  - {kind: crash-consumer, target: consumer(1), at: 2s, params: {delay: 500ms}}
  - {kind: stall-consumer, target: consumer(0), at: 3s, for: 500ms}
`)
	r := res["default"]
	if r == nil {
		t.Fatalf("no default config: %v", res)
	}
	if r.Stats.Crashes != 1 {
		t.Errorf("checker saw %d consumer crashes, want 1", r.Stats.Crashes)
	}
	if len(r.Faults) != 2 {
		t.Errorf("%d faults in the history, want 2: %+v", len(r.Faults), r.Faults)
	}
	if l := count(r, checker.Lost); l != 0 {
		t.Errorf("%d lost", l)
	}
}

// TestMutationSkipIdempotenceWindow: with kchaos.bug.skip-idempotence-window the broker
// forgets the batches it has written, so an idempotent producer's retries after lost
// acknowledgements are written twice and the checker reports duplicates that idempotence
// forbids; TestDropResponsesDuplicatesWithoutIdempotence is the same run with the switch off.
func TestMutationSkipIdempotenceWindow(t *testing.T) {
	t.Parallel()
	res := runConfigs(t, dropResponsesWorkload("skipidem", "  idempotence: true\n", ""), "kchaos.bug.skip-idempotence-window=true")
	r := res["default"]
	if r == nil {
		t.Fatalf("no default config: %v", res)
	}
	if dup := count(r, checker.Duplicate); dup == 0 || r.Verdict != "fail" {
		t.Fatalf("kchaos.bug.skip-idempotence-window: duplicates %d, verdict %s; want duplicates under idempotence and a failed verdict", dup, r.Verdict)
	}
	t.Logf("skip-idempotence-window: %d duplicates under idempotence, verdict %s", count(r, checker.Duplicate), r.Verdict)
}

// txnAbortWorkload sends in transactions of 20 records, aborting 30% on purpose, read by a
// read_committed consumer.
const txnAbortWorkload = `name: txnabort
topics: 1
partitionsPerTopic: 2
messageSize: 128
producerRate: 400
duration: 4s
producer:
  acks: all
  transactional: true
  transactionSize: 20
  abortRatio: 0.3
consumer:
  commit: manual-after-processing
  isolationLevel: read_committed
`

// TestMutationTxnCommitOnAbort: a transaction coordinator that writes commit markers for
// aborted transactions makes read_committed consumers read aborted records; the checker
// reports aborted reads and fails the verdict. With the switch off the same run is clean.
func TestMutationTxnCommitOnAbort(t *testing.T) {
	t.Parallel()
	clean := runConfigs(t, txnAbortWorkload)["default"]
	if clean == nil || count(clean, checker.AbortedRead) != 0 || clean.Verdict != "pass" || clean.Stats.SendsOK == 0 {
		t.Fatalf("without bug switches: %+v; want a passing run with no aborted reads", clean)
	}
	bug := runConfigs(t, txnAbortWorkload, "kchaos.bug.txn-commit-on-abort=true")["default"]
	if bug == nil || count(bug, checker.AbortedRead) == 0 || bug.Verdict != "fail" {
		t.Fatalf("kchaos.bug.txn-commit-on-abort: %+v; want aborted reads and a failed verdict", bug)
	}
	t.Logf("txn-commit-on-abort: %d aborted reads, verdict %s (clean run: 0, %s)", count(bug, checker.AbortedRead), bug.Verdict, clean.Verdict)
}

// TestLeaderKillAcksAllEveryDriver (claim 3, per client): the leader of partition 0 is killed
// mid-run on a 3-broker cluster, acks=all with min.insync.replicas=2, once for every driver
// this binary has (the driver matrix dimension). Whatever each client's retries do, no
// acknowledged record may be lost, so the checker's verdict must not be a failure; each
// driver's client must have acknowledged records after the kill too.
func TestLeaderKillAcksAllEveryDriver(t *testing.T) {
	t.Parallel()
	drivers := loadgen.AvailableDrivers()
	res := runConfigs(t, `name: leaderkill
topics: 1
partitionsPerTopic: 2
messageSize: 256
producerRate: 300
duration: 6s
replicationFactor: 3
topicConfig:
  min.insync.replicas: 2
producer:
  acks: all
consumer:
  commit: manual-after-processing
chaos:
  - {kind: kill, target: leader(topic-0,0), at: 1500ms, for: 2500ms}
matrix:
  driver: [`+strings.Join(drivers, ", ")+`]
`)
	if len(res) != len(drivers) {
		t.Fatalf("%d verdicts for %d drivers", len(res), len(drivers))
	}
	for _, d := range drivers {
		r := res["driver="+d]
		if r == nil {
			t.Fatalf("no verdict for driver %s: %v", d, res)
		}
		t.Logf("%s: verdict %s; sends ok %d, lost %d, duplicates %d, faults %d", d, r.Verdict, r.Stats.SendsOK, count(r, checker.Lost), count(r, checker.Duplicate), len(r.Faults))
		if len(r.Faults) != 1 || r.Stats.SendsOK == 0 {
			t.Errorf("%s: %d faults, %d sends acknowledged", d, len(r.Faults), r.Stats.SendsOK)
		}
		if l := count(r, checker.Lost); l != 0 || r.Verdict == "fail" {
			t.Errorf("%s: %d acknowledged records lost under acks=all, verdict %s", d, l, r.Verdict)
		}
	}
}
