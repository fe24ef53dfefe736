package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kchaos runs the command line in-process and returns its output and exit status.
func kchaos(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return out.String() + err.Error(), exitCode(err)
	}
	return out.String(), 0
}

// fixtureRun copies the recorded run of package reports into a temporary directory.
func fixtureRun(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "run")
	if err := exec.Command("cp", "-r", filepath.Join("..", "..", "reports", "testdata", "run"), dst).Run(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestReportAndCompareCommands(t *testing.T) {
	t.Parallel()
	base := fixtureRun(t)
	out, code := kchaos(t, "report", base)
	if code != 0 || !strings.Contains(out, "acks=all:") || !strings.Contains(out, "records sent") {
		t.Fatalf("kchaos report: exit %d\n%s", code, out)
	}
	for _, f := range []string{"report.html", "summary.json", "bench.txt", "plots/throughput.svg", "acks=1/plots/timeline.png"} {
		if st, err := os.Stat(filepath.Join(base, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if out, code := kchaos(t, "compare", base, filepath.Join(base, "summary.json")); code != 0 || strings.Contains(out, "REGRESSION") {
		t.Errorf("an identical pair: exit %d\n%s", code, out)
	}

	// Plant a 40% throughput drop in a copy of the summary.
	var s map[string]any
	b, _ := os.ReadFile(filepath.Join(base, "summary.json"))
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	tp := s["configs"].([]any)[1].(map[string]any)["throughput"].(map[string]any)
	tp["msgs_per_sec"] = tp["msgs_per_sec"].(float64) * 0.6
	b, _ = json.Marshal(s)
	planted := filepath.Join(t.TempDir(), "summary.json")
	if err := os.WriteFile(planted, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = kchaos(t, "compare", base, planted)
	if code != 1 || !strings.Contains(out, "REGRESSION") || !strings.Contains(out, "-40.0%") {
		t.Errorf("a planted 40%% drop: exit %d\n%s", code, out)
	}
	if out, code := kchaos(t, "compare", "--max-throughput-drop", "0.5", base, planted); code != 0 {
		t.Errorf("a 40%% drop within --max-throughput-drop 0.5: exit %d\n%s", code, out)
	}
	if _, code := kchaos(t, "compare", base, filepath.Join(t.TempDir(), "nothing")); code != 2 {
		t.Errorf("a missing summary: exit %d, want 2", code)
	}
}
