package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker"
	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/run"
	"github.com/kchaos/kchaos/target"
	"github.com/kchaos/kchaos/workloads"
)

// RunWorkload runs workload (a workload file's text) through the run package as `kchaos run
// --seed 1` does, on a fresh embedded cluster per configuration with the broker settings sets
// (key=value). It returns each configuration's verdict by its folder name and what the run
// printed (status lines, warnings, the checker's summaries). A configuration that cannot run
// fails the test.
func RunWorkload(t testing.TB, workload string, sets ...string) (map[string]*checker.Result, string) {
	t.Helper()
	outs, printed, err := RunPlan(t, workload, nil, sets...)
	if err != nil {
		t.Fatalf("e2e: run %v: %v\n%s", sets, err, printed)
	}
	res := map[string]*checker.Result{}
	for _, o := range outs {
		res[filepath.Base(o.Dir)] = o.Verdict
	}
	return res, printed
}

// RunPlan is RunWorkload with the run's options adjusted by edit (nil: none), returning the
// outcomes and the run's error instead of failing the test on it. The run directory is
// t.TempDir()/out.
func RunPlan(t testing.TB, workload string, edit func(*run.Options), sets ...string) ([]run.Outcome, string, error) {
	t.Helper()
	return RunPlanIn(t, filepath.Join(t.TempDir(), "out"), workload, edit, sets...)
}

// RunPlanIn is RunPlan into the run directory out, which may hold an earlier run.
func RunPlanIn(t testing.TB, out, workload string, edit func(*run.Options), sets ...string) ([]run.Outcome, string, error) {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	plan, err := workloads.Parse("w.yaml", []byte(workload))
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("e2e: broker setting %q: want key=value", kv)
		}
		props[k] = v
	}
	if err := broker.ValidateProps(props); err != nil {
		t.Fatal(err)
	}
	var printed lockedBuffer
	logger := slog.New(slog.NewTextHandler(&printed, &slog.HandlerOptions{Level: slog.LevelWarn}))
	targets, err := target.Open(target.Spec{Props: props, Binary: bin, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer targets.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := run.Options{Targets: targets, Seed: 1, Logger: logger, Status: &printed}
	if edit != nil {
		edit(&opts)
	}
	outs, err := run.Plan(ctx, plan, out, opts)
	return outs, printed.String(), err
}

// lockedBuffer is a bytes.Buffer the load's status line and the logger may write to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
