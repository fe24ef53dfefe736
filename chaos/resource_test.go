package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/internal/testkit"
)

// inCgroup reports whether pid is listed in cgroup dir.
func inCgroup(dir string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	return err == nil && slices.Contains(strings.Fields(string(b)), strconv.Itoa(pid))
}

// throttled reads how long cgroup dir was throttled (v1 cpu.stat throttled_time in ns, v2
// throttled_usec).
func throttled(dir string) time.Duration {
	b, _ := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "throttled_time" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return time.Duration(n)
		}
		if len(f) == 2 && f[0] == "throttled_usec" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return time.Duration(n) * time.Microsecond
		}
	}
	return 0
}

// pendingOf returns the journal's pending records of action.
func pendingOf(reg *Registry, action string) []Record {
	var out []Record
	for _, r := range reg.Pending() {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// TestResourceFaultsSqueezeTheBroker throttles a real broker to 5% of a CPU with a cgroup,
// caps its memory, and pins a busy loop beside it: each takes effect at once (the broker is in
// the cgroup and throttled under a burst of produces, or shares its CPUs with the loop) and
// heals (the broker is back in its own cgroup, the cgroup and the loop are gone).
func TestResourceFaultsSqueezeTheBroker(t *testing.T) {
	testkit.Need(t, "cgroups with the cpu controller (root)", CgroupsAvailable("cpu"))
	d := startDiskNode(t)
	ctx := context.Background()
	pid := d.node.Pid()
	base := d.medianProduce(20)

	start := time.Now()
	if err := d.drv.Apply(ctx, d.reg, 1, Fault{Kind: CPUStress, Params: map[string]string{"cpus": "0.05"}}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	applied := time.Since(start)
	cg := pendingOf(d.reg, "cgroup")
	if len(cg) != 1 || !inCgroup(cg[0].Path, pid) {
		t.Fatalf("broker %d not in a kchaos cgroup after cpu-stress: %+v", pid, cg)
	}
	var squeezed time.Duration
	effect := until(t, "broker throttled", 20*time.Second, func() bool {
		squeezed = d.medianProduce(20)
		return throttled(cg[0].Path) > 0
	})
	th := throttled(cg[0].Path)
	undo := time.Now()
	if err := d.reg.UndoFault(ctx, 1); err != nil {
		t.Fatal(err)
	}
	healed := time.Since(undo)
	if _, err := os.Stat(cg[0].Path); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s left after heal: %v", cg[0].Path, err)
	}
	t.Logf("cpu-stress cpus=0.05 (cgroup %s): Apply %v, throttled within %v (produce p50 %v before, %v during, throttled %v); heal %v",
		cg[0].Path, applied, effect, base, squeezed, th, healed)

	if err := CgroupsAvailable("memory"); err == nil {
		start = time.Now()
		if err := d.drv.Apply(ctx, d.reg, 2, Fault{Kind: MemoryPressure}, Resolved{Nodes: []int32{1}}); err != nil {
			t.Fatal(err)
		}
		applied = time.Since(start)
		cg = pendingOf(d.reg, "cgroup")
		if len(cg) != 1 || !inCgroup(cg[0].Path, pid) {
			t.Fatalf("broker not in a memory cgroup: %+v", cg)
		}
		d.mustProduce(500)
		limit, _ := os.ReadFile(filepath.Join(cg[0].Path, "memory.limit_in_bytes"))
		usage, _ := os.ReadFile(filepath.Join(cg[0].Path, "memory.usage_in_bytes"))
		if err := d.reg.UndoFault(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if !d.node.Running() || d.node.Pid() != pid {
			t.Logf("the broker was restarted after the kernel killed it under memory pressure")
		}
		t.Logf("memory-pressure: Apply %v; limit %s bytes, usage %s bytes after 500 records; healed", applied,
			strings.TrimSpace(string(limit)), strings.TrimSpace(string(usage)))
		if _, err := os.Stat(cg[0].Path); !os.IsNotExist(err) {
			t.Fatalf("cgroup %s left after heal", cg[0].Path)
		}
	}

	start = time.Now()
	if err := d.drv.Apply(ctx, d.reg, 3, Fault{Kind: CPUStress, Params: map[string]string{"mode": "hog", "workers": "2"}}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	hogs := pendingOf(d.reg, "hog")
	if len(hogs) != 2 {
		t.Fatalf("%d busy loops journalled, want 2", len(hogs))
	}
	for _, h := range hogs {
		if processState(t, h.Pid) == 0 {
			t.Fatalf("busy loop %d not running", h.Pid)
		}
	}
	hogged := d.medianProduce(20)
	if err := d.reg.UndoFault(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for _, h := range hogs {
		until(t, fmt.Sprintf("busy loop %d gone", h.Pid), 5*time.Second, func() bool {
			st := processState(t, h.Pid)
			return st == 0 || st == 'Z'
		})
	}
	t.Logf("cpu-stress hog x2: started in %v, produce p50 %v with the loops beside the broker; loops gone after heal", time.Since(start), hogged)
}

// TestHealDirRemovesCgroupsAndHogs leaves a cgroup with a broker in it and a busy loop as a
// crashed harness would, and heals both from the journal alone.
func TestHealDirRemovesCgroupsAndHogs(t *testing.T) {
	testkit.Need(t, "cgroups with the cpu controller (root)", CgroupsAvailable("cpu"))
	d := startDiskNode(t)
	dir := t.TempDir()
	reg, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.drv.Apply(ctx, reg, 1, Fault{Kind: CPUStress}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.drv.Apply(ctx, reg, 2, Fault{Kind: CPUStress, Params: map[string]string{"mode": "hog"}}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	cg, hogs := pendingOf(reg, "cgroup"), pendingOf(reg, "hog")
	reg.Close() // the harness dies here
	report, err := HealDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("heal: %q", report)
	if _, err := os.Stat(cg[0].Path); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s left", cg[0].Path)
	}
	until(t, "busy loop gone", 5*time.Second, func() bool {
		st := processState(t, hogs[0].Pid)
		return st == 0 || st == 'Z'
	})
	if !d.node.Running() {
		t.Fatal("heal stopped the broker")
	}
	if p, err := ReadJournal(dir); err != nil || len(p) != 0 {
		t.Fatalf("journal pending after heal: %+v %v", p, err)
	}
}
