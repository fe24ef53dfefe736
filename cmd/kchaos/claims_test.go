package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/reports"
)

// runKchaos runs the kchaos binary with args and returns its output and exit status.
func runKchaos(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// transactions is a claim 13 experiment on a lone broker: transactional producers abort
// half their transactions, read_uncommitted reads the aborted records, read_committed must
// not.
const transactions = `
name: txn
partitionsPerTopic: 2
messageSize: 64
producerRate: 200
duration: 2s
producer: {acks: all, transactional: true, transactionSize: 10, abortRatio: 0.5}
consumer: {commit: manual-after-processing}
matrix:
  consumer.isolationLevel: [read_uncommitted, read_committed]
claims:
  - {id: 13, unsafe: {consumer.isolationLevel: read_uncommitted}, safe: {consumer.isolationLevel: read_committed}}
trials: 2
`

// TestRunExitStatusFollowsClaims: a claim whose unsafe side shows its anomaly exits 0 (the
// anomaly on the unsafe side fails nothing) after one trial; one the experiment never shows
// exits 1 after all its trials, each in its own folder; one whose configurations do not
// make the experiment is refused with exit 2 before anything runs.
func TestRunExitStatusFollowsClaims(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out := filepath.Join(dir, "held")
	text, code := runKchaos(t, "run", write("txn.yaml", transactions), "--out", out, "--seed", "3")
	if code != 0 {
		t.Fatalf("held claim: exit %d\n%s", code, text)
	}
	s, err := reports.ReadSummary(out)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Claims[12]
	if c.ID != 13 || c.Status != reports.ClaimHeld || c.Unsafe.Observed != 1 || s.Trials != 1 || s.Stopped != "every claim was decided" {
		t.Errorf("claim 13 after %d trials (%s): %+v", s.Trials, s.Stopped, c)
	}
	if _, err := os.Stat(filepath.Join(out, "trial-1", "consumer.isolationLevel=read_uncommitted", "verdict.json")); err != nil {
		t.Errorf("trial folder: %v", err)
	}

	// acks=0 on a lone broker without faults loses nothing: claim 1 stays unknown.
	unknown := strings.NewReplacer("abortRatio: 0.5", "abortRatio: 0", "transactional: true", "transactional: false",
		"consumer.isolationLevel: [read_uncommitted, read_committed]", "acks: [0, all]",
		"{id: 13, unsafe: {consumer.isolationLevel: read_uncommitted}, safe: {consumer.isolationLevel: read_committed}}",
		"{id: 1, unsafe: {acks: 0}, safe: {acks: all}}", "producer: {acks: all,", "producer: {").Replace(transactions)
	out = filepath.Join(dir, "unknown")
	text, code = runKchaos(t, "run", write("acks0.yaml", unknown), "--out", out, "--seed", "3")
	if code != 1 || !strings.Contains(text, "FAIL: claim 1 unknown after 2 trials") {
		t.Fatalf("unknown claim: exit %d\n%s", code, text)
	}
	var info struct {
		Trials []struct{ Dir string } `json:"trials"`
	}
	b, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil || len(info.Trials) != 2 || info.Trials[1].Dir != "trial-2" {
		t.Errorf("run.json trials: %+v %v", info.Trials, err)
	}

	bad := strings.Replace(unknown, "{id: 1,", "{id: 12,", 1)
	text, code = runKchaos(t, "run", write("bad.yaml", bad), "--out", filepath.Join(dir, "bad"))
	if code != 2 || !strings.Contains(text, "claim 12") || strings.Contains(text, "== ") {
		t.Fatalf("claim 12 without its fault or idempotence: exit %d\n%s", code, text)
	}
}

// TestClaimFiles: kchaos claims takes every shipped claim file, or files by path, name or
// claim number.
func TestClaimFiles(t *testing.T) {
	all, err := claimFiles(nil)
	if err != nil || len(all) < 18 {
		t.Fatalf("%d files, %v", len(all), err)
	}
	got, err := claimFiles([]string{"13", "claim-08", "claim-02-acks1-leader-isolated"})
	if err != nil {
		t.Fatal(err)
	}
	want := "claim-13-exactly-once.yaml claim-13-transactions.yaml claim-08-power-loss.yaml claim-02-acks1-leader-isolated.yaml"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if _, err := claimFiles([]string{"42"}); err == nil || !strings.Contains(err.Error(), `"42"`) {
		t.Errorf("claim 42: %v", err)
	}
}
