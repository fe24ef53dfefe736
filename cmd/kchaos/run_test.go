package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kchaos/kchaos/broker/brokertest"
)

func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }

// TestRunSmoke runs the shipped smoke workload through `kchaos run` on the embedded local
// cluster, as `make run` does with the demo: it must exit 0, print the results table and
// leave the per-config files the checker and reports read.
func TestRunSmoke(t *testing.T) {
	t.Parallel()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "run", filepath.Join("..", "..", "workloads", "smoke.yaml"), "--out", out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kchaos run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	text := stdout.String()
	row := ""
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "default ") {
			row = line
		}
	}
	if f := strings.Fields(row); len(f) != 9 || f[1] == "0" || f[1] != f[2] || f[2] != f[5] || f[8] != "ok" {
		t.Fatalf("want a results row with sent = acked = drained > 0 and verdict ok, got %q:\n%s", row, text)
	}
	// The history is kept compressed once checked.
	for _, name := range []string{"history.jsonl.zst", "verdict.json", "result.json", "series.json", "publish-latency.hlog", "cluster/node-1/broker.log"} {
		if st, err := os.Stat(filepath.Join(out, "default", name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"report.html", "summary.json", "run.json", "bench.txt", "plots/latency.png", "default/plots/timeline.svg", "default/resources.json"} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !strings.Contains(text, "default:  600 records sent") {
		t.Error("no kafka-producer-perf-test style line for the config")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", text)
	}
}
