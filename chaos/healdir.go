package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kchaos/kchaos/broker/clock"
	"github.com/kchaos/kchaos/broker/storage/faultfs"
)

// procInfo is what /proc says about a process.
type procInfo struct {
	Start   uint64 // start time, clock ticks since boot (field 22 of /proc/PID/stat)
	State   byte   // R, S, T (stopped), Z, ...
	Cmdline []string
}

// readProc reads /proc/PID/stat and /proc/PID/cmdline.
func readProc(pid int) (procInfo, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	// The command name is in parentheses and may contain spaces; fields follow the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("chaos: /proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return procInfo{}, fmt.Errorf("chaos: /proc/%d/stat: %d fields", pid, len(fields))
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procInfo{}, fmt.Errorf("chaos: /proc/%d/stat start time: %w", pid, err)
	}
	cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return procInfo{}, err
	}
	return procInfo{Start: start, State: fields[0][0], Cmdline: strings.Split(strings.TrimSuffix(string(cmd), "\x00"), "\x00")}, nil
}

// isKchaosBroker reports whether cmdline is `kchaos broker ...`.
func isKchaosBroker(cmdline []string) bool {
	return len(cmdline) >= 2 && strings.Contains(filepath.Base(cmdline[0]), "kchaos") && cmdline[1] == "broker"
}

// sameProcess reports whether pid is still the process rec recorded: same start time and
// command line, and a kchaos broker.
func sameProcess(rec Record) (procInfo, bool) {
	if rec.Pid <= 0 {
		return procInfo{}, false
	}
	pi, err := readProc(rec.Pid)
	if err != nil {
		return procInfo{}, false
	}
	return pi, pi.Start == rec.PidStart && slices.Equal(pi.Cmdline, rec.Cmdline) && isKchaosBroker(pi.Cmdline)
}

// controlFiles clear each control file a fault may leave in a broker's data directory.
var controlFiles = map[string]func(dataDir string) error{
	faultfs.ControlFile: func(dir string) error { return faultfs.SetMode(dir, faultfs.Mode{}) },
	clock.ControlFile:   func(dir string) error { return clock.SetMode(dir, clock.Mode{}) },
}

// ReadJournal returns the changes of dir/chaos-actions.jsonl that have no successful undo,
// oldest first.
func ReadJournal(dir string) ([]Record, error) {
	f, err := os.Open(filepath.Join(dir, JournalFile))
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer f.Close()
	var applied []Record
	undone := map[int64]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, slices.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", f.Name(), err)
	}
	for i, b := range lines {
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			// A crash can cut the last line short; anything else is corruption.
			if i == len(lines)-1 {
				break
			}
			return nil, fmt.Errorf("chaos: %s:%d: %w", f.Name(), i+1, err)
		}
		switch rec.Op {
		case "apply":
			applied = append(applied, rec)
		case "undo":
			if rec.Error == "" {
				undone[rec.Seq] = true
			}
		}
	}
	var out []Record
	for _, rec := range applied {
		if !undone[rec.Seq] {
			out = append(out, rec)
		}
	}
	return out, nil
}

// HealDir undoes what a crashed harness left according to dir's journal, newest change
// first, and journals each undo so running it twice is harmless. It only touches a process
// that is still the one recorded (same pid start time and command line, a kchaos broker):
// a paused broker is resumed. Killed or stopped brokers and impaired links need nothing: the
// launcher's brokers die with the harness (parent-death signal) and the link proxies lived in
// it. The netns driver's namespaces, links, nftables tables, qdiscs, disk fillers and tmpfs
// mounts are removed if they are still there and carry the kchaos- prefix. It returns one
// line per change saying what was done.
func HealDir(ctx context.Context, dir string) ([]string, error) {
	return HealDirWith(ctx, dir, HealOptions{})
}

// HealOptions give HealDirWith what the journal deliberately does not hold.
type HealOptions struct {
	// SSH, when set (from the run's cluster file), runs the recorded undo command of each
	// pending ssh change on its host; without it those changes stay pending and the error
	// says what to run where.
	SSH *SSH
}

// HealDirWith is HealDir with the credentials of remote drivers.
func HealDirWith(ctx context.Context, dir string, opts HealOptions) ([]string, error) {
	pending, err := ReadJournal(dir)
	if err != nil {
		return nil, err
	}
	reg, err := NewRegistry(dir)
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	var report []string
	var errs []error
	for _, rec := range slices.Backward(pending) {
		var msg string
		switch rec.Action {
		case "pause":
			pi, same := sameProcess(rec)
			switch {
			case !same:
				msg = fmt.Sprintf("broker %d (pid %d) paused by fault %d is gone (no such process, or not the kchaos broker recorded); not touched", rec.Node, rec.Pid, rec.Fault)
			default:
				if err := syscall.Kill(rec.Pid, syscall.SIGCONT); err != nil {
					errs = append(errs, fmt.Errorf("chaos: resume pid %d: %w", rec.Pid, err))
					continue
				}
				msg = fmt.Sprintf("resumed broker %d (pid %d, was state %c) paused by fault %d", rec.Node, rec.Pid, pi.State, rec.Fault)
			}
		case "kill", "stop":
			msg = fmt.Sprintf("broker %d %s by fault %d: its cluster ended with the harness; nothing to restart", rec.Node, map[string]string{"kill": "killed", "stop": "stopped"}[rec.Action], rec.Fault)
		case "disk-fault", "clock-fault":
			clear, ok := controlFiles[filepath.Base(rec.Path)]
			if !ok || (rec.Action == "clock-fault") != (filepath.Base(rec.Path) == clock.ControlFile) {
				errs = append(errs, fmt.Errorf("chaos: journal change %d: %q is not a %s control file; not touched", rec.Seq, rec.Path, strings.TrimSuffix(rec.Action, "-fault")))
				continue
			}
			if err := clear(filepath.Dir(rec.Path)); err != nil {
				errs = append(errs, err)
				continue
			}
			msg = fmt.Sprintf("cleared %s %d of broker %d (%s)", strings.ReplaceAll(rec.Action, "-", " "), rec.Fault, rec.Node, rec.Path)
		case "nfqueue":
			msg = fmt.Sprintf("userspace netem queue %s of fault %d in %s lived in the harness; its table goes with the namespace", rec.Object, rec.Fault, rec.Netns)
		case "reassign":
			msg = fmt.Sprintf("reassignment %s of fault %d was made through the admin API: an embedded cluster ended with the harness; on an external cluster reassign the partition back to %s", rec.Object, rec.Fault, rec.Undo)
		case "elect-leader":
			msg = fmt.Sprintf("leader election of %s by fault %d: nothing to undo", rec.Object, rec.Fault)
		case "add-broker":
			msg = fmt.Sprintf("broker %d added by fault %d: its cluster ended with the harness; nothing to stop", rec.Node, rec.Fault)
		case "cgroup":
			if err := removeCgroup(rec.Path); err != nil {
				errs = append(errs, err)
				continue
			}
			msg = fmt.Sprintf("removed cgroup %s of fault %d (broker %d moved back to its own)", rec.Path, rec.Fault, rec.Node)
		case "hog":
			if err := killHog(rec); err != nil {
				errs = append(errs, err)
				continue
			}
			msg = fmt.Sprintf("busy loop %d of cpu-stress fault %d is gone", rec.Pid, rec.Fault)
		case "memory-limit":
			msg = fmt.Sprintf("broker %d under memory-pressure fault %d: its cluster ended with the harness; nothing to restart", rec.Node, rec.Fault)
		case "corrupt-file":
			msg = fmt.Sprintf("broker %d stopped by corrupt-file fault %d (%s: %s): its cluster ended with the harness; the damage stays, as bit rot would", rec.Node, rec.Fault, rec.Path, rec.Object)
		case "lose-unsynced":
			msg = fmt.Sprintf("broker %d killed by lose-unsynced fault %d: its cluster ended with the harness; nothing to restart", rec.Node, rec.Fault)
		case "ssh":
			// The journal holds no SSH credentials: without a cluster file, say what to run
			// where, and leave it pending.
			if opts.SSH == nil {
				errs = append(errs, fmt.Errorf("chaos: journal change %d: fault %d is not undone on %s (give the cluster file); run there: %s", rec.Seq, rec.Fault, rec.Host, rec.Undo))
				continue
			}
			if err := opts.SSH.run(ctx, rec.Host, rec.Undo); err != nil {
				errs = append(errs, fmt.Errorf("chaos: journal change %d: %w", rec.Seq, err))
				continue
			}
			msg = fmt.Sprintf("ran the undo of fault %d on %s: %s", rec.Fault, rec.Host, rec.Undo)
		case "consumer-fault":
			msg = fmt.Sprintf("consumer fault %d acted on the harness's own consumer; nothing to undo", rec.Fault)
		case "impair":
			msg = fmt.Sprintf("links %s impaired by fault %d lived in the harness's proxies; nothing to clear", strings.Join(rec.Links, ","), rec.Fault)
		default:
			if !isNetnsAction(rec.Action) {
				errs = append(errs, fmt.Errorf("chaos: journal change %d: unknown action %q", rec.Seq, rec.Action))
				continue
			}
			m, err := undoNetns(ctx, rec)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			msg = m
		}
		reg.mu.Lock()
		u := rec
		u.Op, u.Time = "undo", time.Now().Format(time.RFC3339Nano)
		reg.writeLocked(u)
		reg.mu.Unlock()
		report = append(report, msg)
		if ctx.Err() != nil {
			return report, ctx.Err()
		}
	}
	if err := reg.Close(); err != nil {
		errs = append(errs, err)
	}
	return report, errors.Join(errs...)
}
