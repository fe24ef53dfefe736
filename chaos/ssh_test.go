package chaos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/local"
)

// testSSHD is a throwaway sshd on a loopback port that accepts one throwaway key.
type testSSHD struct {
	host       string // 127.0.0.1:PORT
	key        string // client private key file
	knownHosts string
}

// startTestSSHD starts /usr/sbin/sshd as a child of the test, or skips the test saying why
// it cannot.
func startTestSSHD(t *testing.T) *testSSHD {
	t.Helper()
	const sshd = "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		t.Skipf("no sshd (install openssh-server): %v", err)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skipf("no ssh-keygen: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory, normally made by the service unit.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Skipf("cannot create /run/sshd: %v", err)
		}
	}
	dir := t.TempDir()
	for _, k := range []string{"host_key", "client_key"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(host)
	hostPub, _ := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	clientPub, _ := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	d := &testSSHD{host: host, key: filepath.Join(dir, "client_key"), knownHosts: filepath.Join(dir, "known_hosts")}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("known_hosts", fmt.Sprintf("[127.0.0.1]:%s %s", port, hostPub))
	write("authorized_keys", string(clientPub))
	write("sshd_config", fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid")))
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Skipf("sshd does not start: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", host, 200*time.Millisecond); err == nil {
			c.Close()
			return d
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Skipf("sshd exited at start: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Skip("sshd does not listen within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSSHDriverPausesBrokerAndCutsPairs runs a schedule through the ssh driver against a real
// sshd: a pause of a real broker process (kill -STOP {pid} from the cluster file) and a
// partition whose commands leave marker files per cut side; both are undone at the end and
// nothing stays pending. A failing command's stderr is reported, and a host whose key is not
// the known one is refused.
func TestSSHDriverPausesBrokerAndCutsPairs(t *testing.T) {
	sshd := startTestSSHD(t)
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := local.StartNode(ctx, local.NodeConfig{ID: 1, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "broker.log"),
		Binary: bin, Listen: "127.0.0.1:0", StopTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Stop()
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
`, currentUser(t), sshd.key, sshd.knownHosts, sshd.host, node.Pid(), sshd.host, marks, marks), 0o644)
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
	syscall.Kill(node.Pid(), syscall.SIGCONT)

	// The host key must be the known one.
	bad := *cluster
	bad.KnownHosts = filepath.Join(dir, "wrong_known_hosts")
	pub, _ := os.ReadFile(sshd.key + ".pub")
	_, port, _ := net.SplitHostPort(sshd.host)
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

func currentUser(t *testing.T) string {
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
