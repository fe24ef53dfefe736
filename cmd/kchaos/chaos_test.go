package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kchaos/kchaos/chaos"
)

func runChaos(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs(append([]string{"chaos"}, args...))
	err := root.Execute()
	return out.String(), err
}

// TestChaosHealResumesOnlyItsBrokers writes the journal a crashed run would leave, naming a
// SIGSTOPped `kchaos broker` process and a SIGSTOPped stranger, and checks that
// `kchaos chaos heal RUNDIR` resumes the broker only, once.
func TestChaosHealResumesOnlyItsBrokers(t *testing.T) {
	run := t.TempDir()
	dir := filepath.Join(run, "acks=all")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A process whose command line is `kchaos broker`: a copy of sh named kchaos running the
	// script file "broker" (a copy of sleep would exit at once on the argument "broker").
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	shBin, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	fakeDir := t.TempDir()
	fake := filepath.Join(fakeDir, "kchaos")
	b, err := os.ReadFile(shBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fake, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fakeDir, "broker"), []byte(sleepBin+" 30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broker := exec.Command(fake, "broker")
	broker.Dir = fakeDir
	stranger := exec.Command(sleepBin, "30")
	for _, c := range []*exec.Cmd{broker, stranger} {
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // killed with its children
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { syscall.Kill(-c.Process.Pid, syscall.SIGKILL); c.Wait() }()
		c.Process.Signal(syscall.SIGSTOP)
	}
	reg, err := chaos.NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []*exec.Cmd{broker, stranger} {
		cmdline, start := procIdentity(t, c.Process.Pid)
		reg.Add(chaos.Record{Fault: int64(i + 1), Action: "pause", Node: int32(i + 1), Pid: c.Process.Pid, PidStart: start, Cmdline: cmdline}, nil)
	}
	reg.Add(chaos.Record{Fault: 3, Action: "impair", Links: []string{"client->1"}}, nil)
	reg.Close()

	out, err := runChaos(t, "heal", run)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Log(out)
	if !strings.Contains(out, "resumed broker 1") || !strings.Contains(out, "not touched") || !strings.Contains(out, "healed 3 change(s) in 1 journal(s)") {
		t.Fatalf("output:\n%s", out)
	}
	deadline := time.Now().Add(2 * time.Second)
	for state(t, broker.Process.Pid) == 'T' && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := state(t, broker.Process.Pid); s == 'T' {
		t.Error("broker still stopped after heal")
	}
	if s := state(t, stranger.Process.Pid); s != 'T' {
		t.Errorf("heal touched a process that is not a kchaos broker (state %c)", s)
	}
	out, err = runChaos(t, "heal", run)
	if err != nil || !strings.Contains(out, "healed 0 change(s)") {
		t.Fatalf("second heal: %v\n%s", err, out)
	}
}

func procIdentity(t *testing.T, pid int) ([]string, uint64) {
	t.Helper()
	cmd, err := os.ReadFile(filepathProc(pid, "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile(filepathProc(pid, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(cmd), "\x00"), "\x00"), start
}

func filepathProc(pid int, name string) string {
	return filepath.Join("/proc", strconv.Itoa(pid), name)
}

func state(t *testing.T, pid int) byte {
	t.Helper()
	stat, err := os.ReadFile(filepathProc(pid, "stat"))
	if err != nil {
		return 0
	}
	s := string(stat)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0][0]
}

func TestChaosScheduleCommand(t *testing.T) {
	out, err := runChaos(t, "schedule", filepath.Join("..", "..", "chaos", "testdata", "workloads", "leader-kill.yaml"), "--seed", "9")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "# seed 9, duration 20s, 3 brokers") || !strings.Contains(out, `"at":"8s","id":1,"phase":"start"`) ||
		!strings.Contains(out, `"at":"12s","id":1,"phase":"end"`) {
		t.Fatalf("schedule output:\n%s", out)
	}
}
