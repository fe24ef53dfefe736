package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/clock"
	"github.com/kchaos/kchaos/broker/storage/faultfs"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/internal/testkit"
)

// lingeringWorkload holds, for minutes, every new kind whose change outlives a process: a
// clock control file, an I/O error control file, a CPU cgroup, busy loops, a memory cgroup
// and Kafka-level impairments in the link proxies.
const lingeringWorkload = `name: lingering
topics: 1
partitionsPerTopic: 1
messageSize: 256
producerRate: 100
duration: 5m
replicationFactor: 3
producer:
  acks: all
consumer:
  commit: manual-after-processing
chaos:
  - {kind: clock-skew, target: broker(1), at: 1s, for: 4m, params: {offset: 1h}}
  - {kind: io-error, target: broker(2), at: 1s, for: 4m, params: {ops: fsync, rate: 0.01}}
  - {kind: cpu-stress, target: broker(3), at: 1s, for: 4m, params: {cpus: 0.5}}
  - {kind: cpu-stress, target: broker(1), at: 1s, for: 4m, params: {mode: hog}}
  - {kind: memory-pressure, target: broker(2), at: 1s, for: 4m, params: {limit: 1GiB}}
  - {kind: duplicate, target: clients, at: 1s, for: 4m}
  - {kind: corrupt, target: all, at: 1s, for: 4m, params: {rate: 1%}}
`

// TestRunNewFaultsInterrupted stops `kchaos run` while clock, I/O error, cgroup, busy-loop
// and packet faults are all in force, once with SIGINT (the run heals itself) and once with
// SIGKILL (`kchaos chaos heal RUNDIR` heals what it left): either way no control file, kchaos
// cgroup or busy loop is left, and the journal has nothing pending.
func TestRunNewFaultsInterrupted(t *testing.T) {
	testkit.Need(t, "cgroups with the cpu and memory controllers (root)", errors.Join(chaos.CgroupsAvailable("cpu"), chaos.CgroupsAvailable("memory")))
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			var cgroups []string
			out := interruptRun(t, bin, lingeringWorkload, nil, sig, func(b []byte) bool {
				for _, w := range []string{`"action":"clock-fault"`, `"action":"disk-fault"`, `"action":"hog"`} {
					if !bytes.Contains(b, []byte(w)) {
						return false
					}
				}
				return bytes.Count(b, []byte(`"action":"cgroup"`)) == 2 && bytes.Count(b, []byte(`"action":"impair"`)) == 2
			}, func(out string) {
				pending, _ := chaos.ReadJournal(filepath.Join(out, "default"))
				for _, r := range pending {
					if r.Action == "cgroup" {
						cgroups = append(cgroups, r.Path)
					}
				}
				got := leftovers(t, out, cgroups)
				if len(got) < 5 {
					t.Fatalf("only %v in force before the signal", got)
				}
				t.Logf("in force before %s: %v", sig, got)
			})
			if p, err := chaos.ReadJournal(filepath.Join(out, "default")); err != nil || len(p) > 0 {
				t.Errorf("journal has changes not undone: %+v %v", p, err)
			}
			if got := leftovers(t, out, cgroups); len(got) > 0 {
				t.Errorf("left after %s and heal: %v", sig, got)
			}
		})
	}
}

// interruptRun runs `kchaos run workload args...` until the journal of its default
// configuration satisfies ready (within 60s), calls before with the output directory, and
// sends sig; after SIGKILL it runs `kchaos chaos heal` on the output directory. It checks that
// no process of the run is left and returns the output directory.
func interruptRun(t *testing.T, bin, workload string, args []string, sig syscall.Signal, ready func(journal []byte) bool, before func(out string)) string {
	t.Helper()
	dir := t.TempDir()
	wl := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(wl, []byte(workload), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"run", wl, "--out", out}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	journal := filepath.Join(out, "default", chaos.JournalFile)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(journal)
		if ready(b) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the faults were not in place within 60s; journal:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before(out)
	start := time.Now()
	cmd.Process.Signal(sig)
	werr := cmd.Wait()
	t.Logf("kchaos run after %s: %v (exited in %v)", sig, werr, time.Since(start))
	if sig == syscall.SIGKILL {
		b, err := exec.Command(bin, "chaos", "heal", out).CombinedOutput()
		if err != nil {
			t.Fatalf("kchaos chaos heal: %v\n%s", err, b)
		}
		t.Logf("kchaos chaos heal:\n%s", b)
	}
	if pids := processesWith(out); len(pids) > 0 {
		t.Errorf("processes of the run still alive: %v", pids)
	}
	return out
}

// leftovers lists what the run's faults changed that is still there: control files under
// out, the kchaos cgroups cgroups (made for its faults), busy loops.
func leftovers(t *testing.T, out string, cgroups []string) []string {
	t.Helper()
	var got []string
	for _, dir := range cgroups {
		if _, err := os.Stat(dir); err == nil {
			got = append(got, dir)
		}
	}
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (d.Name() == clock.ControlFile || d.Name() == faultfs.ControlFile) {
			got = append(got, p)
		}
		return nil
	})
	for _, pid := range processesWith("kchaos-hog") {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.HasSuffix(strings.TrimRight(string(b), "\x00"), "kchaos-hog") {
			got = append(got, "busy loop "+strconv.Itoa(pid))
		}
	}
	return got
}
