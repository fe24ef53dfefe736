package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/chaos/sshtest"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/rundir"
)

// TestRunExternalClusterWithSSHDriver: `kchaos run --bootstrap ... --cluster-file ...` makes a
// workload's faults on an external cluster through the ssh driver (a pause of the broker by
// `kill -STOP {pid}` run over a throwaway loopback sshd), records them in the history and the
// journal, undoes them, and leaves the broker running.
func TestRunExternalClusterWithSSHDriver(t *testing.T) {
	sshd := sshtest.Start(t)
	node := brokertest.Start(t)
	dir := t.TempDir()
	clusterFile := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(clusterFile, fmt.Appendf(nil, `user: %s
key: %s
known_hosts: %s
brokers:
  1: {host: "%s", vars: {pid: "%d"}}
faults:
  pause: {apply: "kill -STOP {pid}", undo: "kill -CONT {pid}"}
`, sshtest.User(t), sshd.Key, sshd.KnownHosts, sshd.Host, node.Pid()), 0o644); err != nil {
		t.Fatal(err)
	}
	wl := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(wl, []byte(`name: sshrun
topics: 1
partitionsPerTopic: 1
messageSize: 100
producerRate: 200
duration: 4s
producer: {acks: all}
chaos:
  - {kind: pause, target: broker(1), at: 1s, for: 1s}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", wl, "--bootstrap", node.Addr(), "--cluster-file", clusterFile, "--out", out, "--seed", "3")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kchaos run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String(), "fault not applied") {
		t.Errorf("a fault failed:\n%s", stdout.String())
	}
	journal, err := os.ReadFile(filepath.Join(out, "default", chaos.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(journal), []byte("\n")) {
		var rec chaos.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Action == "ssh" && rec.Error == "" {
			ops[rec.Op]++
		}
	}
	if ops["apply"] != 1 || ops["undo"] != 1 {
		t.Errorf("journal: %v ssh applies/undos, want 1 each:\n%s", ops, journal)
	}
	hf, err := history.OpenFile(filepath.Join(out, "default", rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	hist, err := io.ReadAll(hf)
	hf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(hist, []byte(`"kind":"pause"`)); n != 2 {
		t.Errorf("history has %d pause fault events, want start and end", n)
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", node.Pid())); err != nil || strings.Contains(string(st), ") T ") {
		t.Errorf("broker not running after the run: %s %v", st, err)
	}
}
