package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/checker"
)

// runMutation runs workload with broker settings sets and returns the checker's result for its
// single configuration.
func runMutation(t *testing.T, workload string, sets ...string) *checker.Result {
	t.Helper()
	res, stdout := runWorkload(t, workload, sets...)
	r := res["default"]
	if r == nil {
		t.Fatalf("no verdict for the default configuration\n%s", stdout)
	}
	return r
}

// runWorkload runs workload through `kchaos run` with broker settings sets and returns each
// configuration's checker result by its directory name, and the run's stdout.
func runWorkload(t *testing.T, workload string, sets ...string) (map[string]*checker.Result, string) {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wl := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(wl, []byte(workload), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	args := []string{"run", wl, "--out", out, "--seed", "1"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("kchaos run %v: %v\n%s\n%s", sets, err, stdout.String(), stderr.String())
	}
	paths, _ := filepath.Glob(filepath.Join(out, "*", "verdict.json"))
	res := map[string]*checker.Result{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r checker.Result
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		res[filepath.Base(filepath.Dir(p))] = &r
	}
	return res, stdout.String()
}

func count(res *checker.Result, name string) int64 {
	if a := res.Anomalies[name]; a != nil {
		return a.Count
	}
	return 0
}

// TestMutationLoseLastBatch: a single broker that drops its last batch on restart loses
// acknowledged writes, and the checker says so.
func TestMutationLoseLastBatch(t *testing.T) {
	const workload = `name: lastbatch
topics: 1
partitionsPerTopic: 1
messageSize: 128
producersPerTopic: 1
producerRate: 500
subscriptionsPerTopic: 1
consumerPerSubscription: 1
duration: 6s
producer:
  acks: 1
  linger: 1ms
  retries: 10
consumer:
  mode: group
  commit: manual-after-processing
chaos:
  - kind: restart
    target: broker(1)
    at: 3s
`
	res := runMutation(t, workload, "kchaos.bug.lose-last-batch-on-restart=true")
	if n := count(res, checker.Lost) + count(res, checker.InconsistentOffsets); n == 0 {
		t.Fatalf("kchaos.bug.lose-last-batch-on-restart: lost %d, inconsistent-offsets %d; want the dropped batch reported",
			count(res, checker.Lost), count(res, checker.InconsistentOffsets))
	}
	t.Logf("lose-last-batch-on-restart: lost %d, inconsistent-offsets %d", count(res, checker.Lost), count(res, checker.InconsistentOffsets))
}

// TestMutationTxnSplitMarkers: a transaction coordinator that writes a transaction's outcome
// marker to its first partition only, and the opposite marker to the others, breaks
// atomicity; a real transactional run with aborts read by read_committed consumers shows
// it as aborted reads (Jepsen's G1a) or a G1c cycle, and the verdict fails.
// TestMutationTxnCommitOnAbort runs the same workload with the switches off.
func TestMutationTxnSplitMarkers(t *testing.T) {
	r := runConfigs(t, txnAbortWorkload, "kchaos.bug.txn-split-markers=true")["default"]
	if r == nil {
		t.Fatal("no verdict for the default configuration")
	}
	caught := count(r, checker.AbortedRead) + count(r, checker.G1c)
	if caught == 0 || r.Verdict != checker.StatusFail {
		t.Fatalf("kchaos.bug.txn-split-markers: aborted-read %d, G1c %d, verdict %s; want atomicity broken and a failed verdict",
			count(r, checker.AbortedRead), count(r, checker.G1c), r.Verdict)
	}
	t.Logf("txn-split-markers: aborted-read %d, G1c %d, lost %d, verdict %s", count(r, checker.AbortedRead), count(r, checker.G1c), count(r, checker.Lost), r.Verdict)
}
