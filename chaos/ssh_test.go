package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/chaos/sshtest"
)

// TestSSHDriverPausesBrokerAndCutsPairs runs a schedule through the ssh driver against a real
// sshd: a pause of a real broker process (kill -STOP {pid} from the cluster file) and a
// partition whose commands leave marker files per cut side; both are undone at the end and
// nothing stays pending. A failing command's stderr is reported, and a host whose key is not
// the known one is refused.
func TestSSHDriverPausesBrokerAndCutsPairs(t *testing.T) {
	sshd := sshtest.Start(t)
	node := brokertest.Start(t)
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	clusterFile := filepath.Join(dir, "cluster.yaml")
	os.WriteFile(clusterFile, fmt.Appendf(nil, `user: %s
key: %s
known_hosts: %s
timeout: 10s
brokers:
  1: {host: "%s", vars: {pid: "%d"}}
  2: {host: "%s", addr: 127.0.0.2}
faults:
  pause: {apply: "kill -STOP {pid}", undo: "kill -CONT {pid}"}
  partition: {apply: "touch %s/cut-{node}-from-{peer_node}-{peer}", undo: "rm %s/cut-{node}-from-{peer_node}-{peer}"}
  kill: {apply: "echo no such service >&2; exit 3", undo: "true"}
`, sshtest.User(t), sshd.Key, sshd.KnownHosts, sshd.Host, node.Pid(), sshd.Host, marks, marks), 0o644)
	cluster, err := LoadSSHCluster(clusterFile)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := NewSSH(cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	if got := fmt.Sprint(drv.Kinds()); got != "[kill partition pause]" {
		t.Errorf("kinds %s", got)
	}
	faults, err := ParseYAML("t.yaml", []byte(`
- {kind: pause, target: broker(1), at: 0s, for: 2s}
- {kind: partition, target: broker(1), params: {from: broker(2)}, at: 0s, for: 2s}
`))
	if err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	start := time.Now()
	r, err := Start(context.Background(), faults, Env{Seed: 1, Duration: 3 * time.Second, Driver: drv, RunDir: runDir,
		Resolver: ResolverFunc(func(context.Context) (ClusterView, error) {
			return ClusterView{Brokers: []int32{1, 2}, Controller: 1}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	paused := until(t, "broker paused over ssh", 5*time.Second, func() bool { return processState(t, node.Pid()) == 'T' })
	wantMarks := []string{"cut-1-from-2-127.0.0.2", "cut-2-from-1-127.0.0.1"}
	cut := until(t, "partition commands ran on both sides", 5*time.Second, func() bool {
		ents, _ := os.ReadDir(marks)
		return len(ents) == len(wantMarks)
	})
	for _, m := range wantMarks {
		if _, err := os.Stat(filepath.Join(marks, m)); err != nil {
			t.Errorf("partition side %s: %v", m, err)
		}
	}
	until(t, "faults end", 10*time.Second, func() bool { return processState(t, node.Pid()) != 'T' })
	healed := time.Since(start) - 2*time.Second
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if f := r.Failures(); len(f) > 0 {
		t.Fatalf("failures: %v", f)
	}
	if ents, _ := os.ReadDir(marks); len(ents) != 0 {
		t.Errorf("partition not undone: %d marker files left", len(ents))
	}
	if p, err := ReadJournal(runDir); err != nil || len(p) > 0 {
		t.Errorf("journal pending after the run: %+v %v", p, err)
	}
	t.Logf("ssh pause: took effect %s after start; ssh partition (both sides) %s; undone %s after the fault's end",
		paused.Round(time.Millisecond), cut.Round(time.Millisecond), healed.Round(time.Millisecond))

	reg, err := NewRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	err = drv.Apply(context.Background(), reg, 9, Fault{Kind: Kill}, Resolved{Nodes: []int32{1}})
	if err == nil || !strings.Contains(err.Error(), "no such service") {
		t.Errorf("failing command: got %v, want its stderr", err)
	}
	if p := reg.Pending(); len(p) != 0 {
		t.Errorf("a failed command was recorded for undo: %+v", p)
	}

	// After a crash, kchaos chaos heal cannot reach the host: it says what to run there and
	// keeps the change pending.
	crashDir := t.TempDir()
	creg, err := NewRegistry(crashDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := drv.Apply(context.Background(), creg, 11, Fault{Kind: Pause}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	creg.Close()
	_, err = HealDir(context.Background(), crashDir)
	if want := fmt.Sprintf("run there: kill -CONT %d", node.Pid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("HealDir of an ssh change: got %v, want it to say %q", err, want)
	}
	if p, _ := ReadJournal(crashDir); len(p) != 1 {
		t.Errorf("ssh change not pending after HealDir: %+v", p)
	}
	// Given the cluster file's driver (kchaos chaos heal --cluster-file), it runs the undo on
	// the host, journals it, and a second heal has nothing left to do.
	report, err := HealDirWith(context.Background(), crashDir, HealOptions{SSH: drv})
	if err != nil || len(report) != 1 {
		t.Errorf("HealDirWith an ssh driver: %v %v", report, err)
	}
	until(t, "broker resumed by the crash heal", 5*time.Second, func() bool { return processState(t, node.Pid()) != 'T' })
	if p, _ := ReadJournal(crashDir); len(p) != 0 {
		t.Errorf("ssh change still pending after HealDirWith: %+v", p)
	}
	if report, err := HealDirWith(context.Background(), crashDir, HealOptions{SSH: drv}); err != nil || len(report) != 0 {
		t.Errorf("second heal: %v %v", report, err)
	}
	syscall.Kill(node.Pid(), syscall.SIGCONT)

	// The host key must be the known one.
	bad := *cluster
	bad.KnownHosts = filepath.Join(dir, "wrong_known_hosts")
	pub, _ := os.ReadFile(sshd.Key + ".pub")
	_, port, _ := net.SplitHostPort(sshd.Host)
	os.WriteFile(bad.KnownHosts, fmt.Appendf(nil, "[127.0.0.1]:%s %s", port, pub), 0o600)
	badDrv, err := NewSSH(&bad)
	if err != nil {
		t.Fatal(err)
	}
	defer badDrv.Close()
	err = badDrv.Apply(context.Background(), reg, 10, Fault{Kind: Pause}, Resolved{Nodes: []int32{1}})
	if err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("unknown host key: got %v, want a host key error", err)
	}
	if processState(t, node.Pid()) == 'T' {
		t.Error("the broker was paused through a host with the wrong key")
	}
}

// TestSSHClockBumpMovesTheBrokersClock bumps a real broker's clock through an ssh cluster
// file whose commands write the broker's clock control file (what a cluster of kchaos brokers
// would name; a JVM cluster names date -s and chrony), with the fault's params as template
// values, and undoes it at the end.
func TestSSHClockBumpMovesTheBrokersClock(t *testing.T) {
	sshd := sshtest.Start(t)
	node := brokertest.Start(t)
	dir := t.TempDir()
	clusterFile := filepath.Join(dir, "cluster.yaml")
	ctl := filepath.Join(node.DataDir(), ".kchaos-clock")
	os.WriteFile(clusterFile, fmt.Appendf(nil, `user: %s
key: %s
known_hosts: %s
brokers:
  1: {host: "%s", vars: {data: "%s"}}
faults:
  clock-bump: {apply: "echo offset={delta_ms}ms > {data}/.kchaos-clock.tmp && mv {data}/.kchaos-clock.tmp {data}/.kchaos-clock && touch {data}/bumped-{delta_s}", undo: "rm -f {data}/.kchaos-clock"}
`, sshtest.User(t), sshd.Key, sshd.KnownHosts, sshd.Host, node.DataDir()), 0o644)
	cluster, err := LoadSSHCluster(clusterFile)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := NewSSH(cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	reg, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	start := time.Now()
	f := Fault{Kind: ClockBump, Target: Target{Sel: SelBroker, Broker: 1}, Params: map[string]string{"delta": "-2m30s"}}
	if err := drv.Apply(context.Background(), reg, 1, f, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ctl)
	if err != nil || strings.TrimSpace(string(b)) != "offset=-150000ms" {
		t.Fatalf("control file %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(node.DataDir(), "bumped--150")); err != nil {
		t.Fatalf("{delta_s} not expanded: %v", err)
	}
	t.Logf("clock-bump over ssh applied in %v", time.Since(start))
	if err := reg.UndoFault(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ctl); !os.IsNotExist(err) {
		t.Fatalf("undo left the control file: %v", err)
	}
	if err := drv.Apply(context.Background(), reg, 2, Fault{Kind: ClockSkew, Target: Target{Sel: SelClients}}, Resolved{}); err == nil {
		t.Fatal("the ssh driver accepted a clock fault on clients")
	}
}
