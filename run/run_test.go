package run_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/internal/e2e"
	"github.com/kchaos/kchaos/run"
	"github.com/kchaos/kchaos/rundir"
)

func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }

// small is a short acks=all run on one broker.
const small = `name: small
topics: 1
partitionsPerTopic: 2
messageSize: 256
producersPerTopic: 1
producerRate: 300
subscriptionsPerTopic: 1
duration: 3s
producer:
  acks: all
  linger: 1ms
consumer:
  commit: manual-after-processing
`

// TestSettledRunDirectory: a configuration that passed leaves its history compressed (and
// still readable by the checker) and no broker data, but keeps the broker logs; with KeepData
// the data stays.
func TestSettledRunDirectory(t *testing.T) {
	for _, keep := range []bool{false, true} {
		outs, printed, err := e2e.RunPlan(t, small, func(o *run.Options) { o.KeepData = keep })
		if err != nil {
			t.Fatalf("run: %v\n%s", err, printed)
		}
		dir := outs[0].Dir
		if _, err := os.Stat(filepath.Join(dir, rundir.HistoryFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("keep=%v: the plain history is still there (%v)", keep, err)
		}
		res, err := checker.CheckFile(filepath.Join(dir, rundir.HistoryFile))
		if err != nil || res.Failed() {
			t.Fatalf("keep=%v: the compressed history does not check: %v %+v", keep, err, res)
		}
		data, _ := filepath.Glob(filepath.Join(dir, "cluster", "node-*", "data"))
		logs, _ := filepath.Glob(filepath.Join(dir, "cluster", "node-*", "broker.log"))
		if len(logs) == 0 {
			t.Errorf("keep=%v: the broker logs are gone", keep)
		}
		if keep != (len(data) > 0) {
			t.Errorf("keep=%v: broker data directories left: %v", keep, data)
		}
		if outs[0].Bytes <= 0 {
			t.Errorf("keep=%v: Bytes = %d", keep, outs[0].Bytes)
		}
	}
}

// TestDiskGuardStopsTheRun: when the file system is about to fill (here: a minimum free space
// no disk has), the configuration stops producing at once, is still drained, checked and
// written, and the run ends with ErrDiskFull after it.
func TestDiskGuardStopsTheRun(t *testing.T) {
	const w = `name: long
partitionsPerTopic: 2
messageSize: 256
producerRate: 300
duration: 30s
producer:
  linger: 1ms
consumer:
  commit: manual-after-processing
matrix:
  acks: ["1", all]
`
	outs, printed, err := e2e.RunPlan(t, w, func(o *run.Options) { o.MinFree = math.MaxUint64 })
	if !errors.Is(err, run.ErrDiskFull) {
		t.Fatalf("run error %v, want ErrDiskFull\n%s", err, printed)
	}
	if len(outs) != 1 {
		t.Fatalf("%d configurations ran, want the first only", len(outs))
	}
	o := outs[0]
	if o.Result.Elapsed.Seconds() > 10 {
		t.Errorf("the load ran %s of its 30s", o.Result.Elapsed)
	}
	if o.Verdict == nil || o.Verdict.Failed() || o.Result.Drained != o.Result.Acked {
		t.Errorf("verdict %+v, acked %d, drained %d: what ran must still be drained and pass", o.Verdict, o.Result.Acked, o.Result.Drained)
	}
	if !history.Exists(filepath.Join(o.Dir, rundir.HistoryFile)) {
		t.Error("no history written")
	}
}

// TestPerformanceSteps: a workload's performance section measures the capacity and the
// latency at each offered load before the run proper, on topics deleted afterwards, and
// writes performance.json.
func TestPerformanceSteps(t *testing.T) {
	w := small + `performance:
  capacity: 3s
  loads: [0.5]
  rates: [200]
  step: 2s
  warmup: 500ms
`
	outs, printed, err := e2e.RunPlan(t, w, nil)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, printed)
	}
	b, err := os.ReadFile(filepath.Join(outs[0].Dir, rundir.PerformanceFile))
	if err != nil {
		t.Fatal(err)
	}
	var p rundir.Performance
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.Capacity < 1000 {
		t.Errorf("capacity %.0f records/s; a broker takes far more", p.Capacity)
	}
	if len(p.Points) != 2 || p.Points[0].Name != "200/s" || p.Points[1].Name != "0.5x" {
		t.Fatalf("points %+v, want 200/s then 0.5x", p.Points)
	}
	for _, pt := range p.Points {
		if pt.Achieved < 0.8*pt.Offered || pt.Publish.Count == 0 {
			t.Errorf("point %s: offered %.0f achieved %.0f, %d latencies", pt.Name, pt.Offered, pt.Achieved, pt.Publish.Count)
		}
	}
	if outs[0].Verdict.Failed() || outs[0].Result.Sent < 500 {
		t.Errorf("the run proper: sent %d, verdict %s", outs[0].Result.Sent, outs[0].Verdict.Verdict)
	}
}

// TestRerunIntoTheSameDirectory: a run into a directory an earlier run left its brokers' data
// and logs in (KeepData) starts from empty brokers: their logs hold only the new run, and its
// configuration passes on a cluster that does not boot from the old run's metadata.
func TestRerunIntoTheSameDirectory(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	first, printed, err := e2e.RunPlanIn(t, out, small, func(o *run.Options) { o.KeepData = true })
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, printed)
	}
	logs, _ := filepath.Glob(filepath.Join(first[0].Dir, "cluster", "node-*", "broker.log"))
	if len(logs) == 0 {
		t.Fatal("the first run left no broker log")
	}
	const marker = "left by the first run"
	for _, l := range logs {
		f, err := os.OpenFile(l, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, marker)
		f.Close()
	}
	outs, printed, err := e2e.RunPlanIn(t, out, small, nil)
	if err != nil || outs[0].Verdict.Failed() {
		t.Fatalf("second run: %v\n%s", err, printed)
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), marker) {
			t.Errorf("%s still holds the first run's log", l)
		}
	}
	if data, _ := filepath.Glob(filepath.Join(outs[0].Dir, "cluster", "node-*", "data")); len(data) > 0 {
		t.Errorf("the first run's broker data is still there: %v", data)
	}
}
