// Package brokertest runs the kchaos reference broker as a real child process for tests in
// any package: it builds cmd/kchaos once per test binary, starts `kchaos broker` on a loopback
// port and stops it when the test ends.
//
//	func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		p := brokertest.Start(t, brokertest.Set("num.partitions", "3"))
//		cl, _ := kgo.NewClient(kgo.SeedBrokers(p.Addr()))
//		...
//	}
//
// When the test binary is built with -race the broker is too, and a data race it reports fails
// the test that ran it. It is a thin test wrapper over broker/local, the launcher kchaos uses.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/local"
)

// StartTimeout bounds the wait for the broker's "broker ready" log line; default 20s.
var StartTimeout = 20 * time.Second

// StopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL; default 10s.
var StopTimeout = 10 * time.Second

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Main runs the package's tests and then removes the broker binary Start built. Call it from
// TestMain: os.Exit(brokertest.Main(m)). Without it the binary is left in a temporary
// directory.
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// Binary returns the path of the kchaos binary, building it on first use with `go build` from
// the module root (found with `go env GOMOD`), with -race when this test binary has it.
func Binary() (string, error) {
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("brokertest: go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			buildErr = errors.New("brokertest: not inside a Go module")
			return
		}
		buildDir, err = os.MkdirTemp("", "kchaos-brokertest-")
		if err != nil {
			buildErr = fmt.Errorf("brokertest: %w", err)
			return
		}
		buildBin = filepath.Join(buildDir, "kchaos")
		args := []string{"build", "-o", buildBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/kchaos")...)
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("brokertest: go build ./cmd/kchaos: %w\n%s", err, out)
		}
	})
	return buildBin, buildErr
}

// Option configures a broker started by Start.
type Option func(*Process)

// Set passes --set key=value (a server.properties setting) to the broker.
func Set(key, value string) Option {
	return func(p *Process) { p.sets = append(p.sets, key+"="+value) }
}

// Metrics serves Prometheus metrics on addr (HOST:PORT; port 0 picks one, see MetricsAddr).
func Metrics(addr string) Option { return func(p *Process) { p.metrics = addr } }

// DataDir uses dir as the data directory instead of a fresh t.TempDir(), e.g. to start a
// broker on the data of one that was killed.
func DataDir(dir string) Option { return func(p *Process) { p.dataDir = dir } }

// NodeID sets --node-id; default 1.
func NodeID(id int) Option { return func(p *Process) { p.nodeID = id } }

// Process is a running `kchaos broker` child process, a test's view of a local.Node. Its
// methods are for the test goroutine that started it.
type Process struct {
	t       testing.TB
	nodeID  int
	dataDir string
	sets    []string
	metrics string

	node *local.Node
	// logs keeps the stderr of earlier runs (before a Restart) for failure messages.
	logs []string
}

// Start builds the broker binary if needed, starts a lone broker (a cluster of one, its own
// controller) listening on 127.0.0.1:0 and waits (up to StartTimeout) until it serves
// requests, typically 50-100ms. The broker is stopped when the
// test ends; if it logged a data race or the test failed, its stderr is logged.
func Start(t testing.TB, opts ...Option) *Process {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, nodeID: 1}
	for _, o := range opts {
		o(p)
	}
	if p.dataDir == "" {
		p.dataDir = t.TempDir()
	}
	props := map[string]string{}
	for _, kv := range p.sets {
		k, v, _ := strings.Cut(kv, "=")
		props[k] = v
	}
	n, err := local.StartNode(context.Background(), local.NodeConfig{
		ID: int32(p.nodeID), DataDir: p.dataDir, LogPath: filepath.Join(t.TempDir(), "broker.log"),
		Binary: bin, Listen: "127.0.0.1:0", MetricsListen: p.metrics, Props: props,
		// The race runtime sleeps 1s at exit by default; a broker's exit needs no grace period.
		Env:          []string{"GORACE=atexit_sleep_ms=0 " + os.Getenv("GORACE")},
		StartTimeout: StartTimeout, StopTimeout: StopTimeout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.node = n
	t.Cleanup(p.cleanup)
	return p
}

// Addr returns the broker's client address, HOST:PORT.
func (p *Process) Addr() string { return p.node.Addr() }

// Pid returns the current broker process's pid.
func (p *Process) Pid() int { return p.node.Pid() }

// MetricsAddr returns the metrics listener's address, or "" when metrics are off.
func (p *Process) MetricsAddr() string { return p.node.MetricsAddr() }

// DataDir returns the broker's data directory.
func (p *Process) DataDir() string { return p.dataDir }

// Stderr returns what the current broker process has logged so far.
func (p *Process) Stderr() string { return p.node.Log() }

// Kill sends SIGKILL and waits for the process to exit: no flush, no clean shutdown.
func (p *Process) Kill() {
	p.t.Helper()
	if p.node.Running() {
		p.node.Kill()
	}
}

// Stop sends SIGTERM and waits for a clean exit, failing the test if the broker does not exit
// within StopTimeout (it is then killed) or exits with an error.
func (p *Process) Stop() {
	p.t.Helper()
	if err := p.node.Stop(); err != nil {
		p.t.Errorf("brokertest: %v\n%s", err, p.Stderr())
	}
}

// Restart stops the broker if it still runs (SIGTERM) and starts it again on the same data
// directory and port.
func (p *Process) Restart() {
	p.t.Helper()
	p.Stop()
	p.checkRace()
	p.logs = append(p.logs, p.Stderr())
	if err := p.node.Restart(context.Background()); err != nil {
		p.t.Fatalf("brokertest: %v\n%s", err, p.Stderr())
	}
}

func (p *Process) cleanup() {
	p.node.Stop()
	p.checkRace()
	if p.t.Failed() {
		p.t.Logf("broker stderr:\n%s%s", strings.Join(p.logs, ""), p.Stderr())
	}
}

// checkRace fails the test if the broker reported a data race. The process must have exited
// (its log is complete once Done is closed).
func (p *Process) checkRace() {
	<-p.node.Done()
	if s := p.Stderr(); strings.Contains(s, "WARNING: DATA RACE") {
		p.t.Errorf("brokertest: the broker reported a data race:\n%s", s)
	}
}
