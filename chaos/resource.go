package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kchaos/kchaos/workloads"
)

// Resource faults squeeze one broker process with a cgroup of its own, made inside the
// cgroup the broker already runs in (so whatever limits the host placed on the harness still
// hold), or, for cpu-stress without cgroups, with busy-loop processes pinned to its CPUs.
// cgroup v2 (a unified hierarchy with the cpu and memory controllers) is used where the
// broker's cgroup offers it, else cgroup v1's cpu and memory hierarchies. The cgroups are
// named kchaos-<harness pid>-f<fault>-b<broker> and journalled; healing moves the broker back and removes
// them. A broker restarted while the fault lasts runs outside the cgroup.

// cgroupRoot is where the cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// hogMarker is the $0 of every busy-loop process, by which heal recognises them.
const hogMarker = "kchaos-hog"

// cgroupDir returns the directory of pid's cgroup for controller (v1: the hierarchy's mount
// point joined with the process's path; v2: the unified path), and whether it is v2. It
// returns "" when neither offers the controller.
func cgroupDir(pid int, controller string) (string, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", false
	}
	defer f.Close()
	var v1, v2 string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			for _, base := range []string{cgroupRoot, filepath.Join(cgroupRoot, "unified")} {
				dir := filepath.Join(base, parts[2])
				if b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers")); err == nil && strings.Contains(" "+string(b)+" ", " "+controller+" ") {
					v2 = dir
					break
				}
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v1 = filepath.Join(cgroupRoot, controller, parts[2])
			}
		}
	}
	if v2 != "" {
		return v2, true
	}
	if _, err := os.Stat(v1); v1 != "" && err == nil {
		return v1, false
	}
	return "", false
}

// CgroupsAvailable returns nil when this process can make cgroups for controller ("cpu" or
// "memory") in its own cgroup, else why not.
func CgroupsAvailable(controller string) error {
	dir, v2 := cgroupDir(os.Getpid(), controller)
	if dir == "" {
		return fmt.Errorf("chaos: no cgroup with the %s controller", controller)
	}
	probe := filepath.Join(dir, "kchaos-probe-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return fmt.Errorf("chaos: cannot make cgroups in %s: %w", dir, err)
	}
	defer os.Remove(probe)
	if v2 {
		if _, err := os.Stat(filepath.Join(probe, controller+".max")); controller == "cpu" && err != nil {
			return fmt.Errorf("chaos: %s does not delegate the cpu controller to its children", dir)
		}
	}
	return nil
}

// writeFile writes s to a cgroup file.
func writeFile(path, s string) error {
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("chaos: %s: %w", path, err)
	}
	return nil
}

// enterCgroup makes cgroup name beside pid's for controller, configures it with set and moves
// pid into it. It returns the cgroup made (journalled in reg with its undo) or an error.
func enterCgroup(reg *Registry, id int64, node int32, pid int, controller, name string, set func(dir string, v2 bool) error) error {
	parent, v2 := cgroupDir(pid, controller)
	if parent == "" {
		return fmt.Errorf("chaos: broker %d: no cgroup with the %s controller", node, controller)
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("chaos: broker %d: %w", node, err)
	}
	rec := Record{Fault: id, Action: "cgroup", Node: node, Pid: pid, Path: dir, Undo: "remove"}
	if pi, err := readProc(pid); err == nil {
		rec.PidStart, rec.Cmdline = pi.Start, pi.Cmdline
	}
	reg.Add(rec, func(context.Context) error { return removeCgroup(dir) })
	if err := set(dir, v2); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid))
}

// removeCgroup moves whatever runs in dir (a kchaos- cgroup) to its parent and removes it.
func removeCgroup(dir string) error {
	if !strings.HasPrefix(filepath.Base(dir), NetnsPrefix) {
		return fmt.Errorf("chaos: %s is not a kchaos cgroup; not touched", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, pid := range strings.Fields(string(b)) {
		if err := writeFile(filepath.Join(filepath.Dir(dir), "cgroup.procs"), pid); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("chaos: remove cgroup: %w", err))
	}
	return errors.Join(errs...)
}

// resource does resource fault f to broker node.
func (d *Local) resource(ctx context.Context, reg *Registry, id int64, f Fault, node int32) error {
	p, ok := d.Nodes[node]
	if !ok {
		return fmt.Errorf("chaos: %s: broker %d is not in this local cluster", f.Kind, node)
	}
	pid := p.Pid()
	if pid <= 0 {
		return fmt.Errorf("chaos: %s: broker %d is not running", f.Kind, node)
	}
	name := fmt.Sprintf("%s%d-f%d-b%d", NetnsPrefix, os.Getpid(), id, node)
	switch f.Kind {
	case CPUStress:
		cpus := 0.2
		if v, err := strconv.ParseFloat(f.param("cpus", "0.2"), 64); err == nil {
			cpus = v
		}
		if f.param("mode", "cgroup") == "hog" || CgroupsAvailable("cpu") != nil {
			return d.hog(reg, id, node, pid, f.paramInt("workers", 1))
		}
		const period = 100000
		quota := max(1000, int(cpus*period))
		return enterCgroup(reg, id, node, pid, "cpu", name, func(dir string, v2 bool) error {
			if v2 {
				return writeFile(filepath.Join(dir, "cpu.max"), fmt.Sprintf("%d %d", quota, period))
			}
			return errors.Join(writeFile(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(period)),
				writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.Itoa(quota)))
		})
	case MemoryPressure:
		if err := CgroupsAvailable("memory"); err != nil {
			return fmt.Errorf("chaos: memory-pressure needs cgroups: %w", err)
		}
		limit := int64(16 << 20)
		if s, err := workloads.ParseSize(f.param("limit", "")); err == nil && s > 0 {
			limit = int64(s)
		} else if rss, err := residentBytes(pid); err == nil {
			limit += rss
		}
		// A broker the kernel kills for it is started again when the fault ends.
		reg.Add(Record{Fault: id, Action: "memory-limit", Node: node}, func(ctx context.Context) error {
			if p.Running() {
				return nil
			}
			return p.Restart(ctx)
		})
		return enterCgroup(reg, id, node, pid, "memory", name, func(dir string, v2 bool) error {
			if v2 {
				return writeFile(filepath.Join(dir, "memory.high"), strconv.FormatInt(limit, 10))
			}
			// Charges move with the broker where the kernel still allows it (recent kernels
			// refuse), so its page cache counts against the limit; else what it allocates
			// from now on does.
			writeFile(filepath.Join(dir, "memory.move_charge_at_immigrate"), "3")
			return writeFile(filepath.Join(dir, "memory.limit_in_bytes"), strconv.FormatInt(limit, 10))
		})
	}
	return fmt.Errorf("chaos: the local driver cannot do %s", f.Kind)
}

// residentBytes is pid's resident set size.
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("chaos: /proc/%d/statm: %q", pid, b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()), err
}

// hog starts workers busy-loop processes pinned to the CPUs broker pid may run on.
func (d *Local) hog(reg *Registry, id int64, node int32, pid, workers int) error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &set); err != nil {
		return fmt.Errorf("chaos: cpu-stress broker %d: affinity: %w", node, err)
	}
	for range workers {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done", hogMarker)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("chaos: cpu-stress broker %d: %w", node, err)
		}
		hp := cmd.Process.Pid
		go cmd.Wait()
		rec := Record{Fault: id, Action: "hog", Node: node, Pid: hp, Undo: "kill"}
		if pi, err := readProc(hp); err == nil {
			rec.PidStart, rec.Cmdline = pi.Start, pi.Cmdline
		}
		reg.Add(rec, func(context.Context) error { return killHog(rec) })
		if err := unix.SchedSetaffinity(hp, &set); err != nil {
			return fmt.Errorf("chaos: cpu-stress broker %d: pin: %w", node, err)
		}
	}
	return nil
}

// killHog kills a busy-loop process the record names if it is still that process.
func killHog(rec Record) error {
	pi, err := readProc(rec.Pid)
	if err != nil || pi.Start != rec.PidStart || !isHog(pi.Cmdline) {
		return nil
	}
	if err := syscall.Kill(rec.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("chaos: kill hog %d: %w", rec.Pid, err)
	}
	return nil
}

// isHog reports whether cmdline is one of our busy loops.
func isHog(cmdline []string) bool {
	return len(cmdline) == 4 && cmdline[1] == "-c" && cmdline[3] == hogMarker
}
