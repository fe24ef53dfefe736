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
// the test that ran it. It is the single-broker fixture; the multi-broker launcher extends it.
package brokertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds the wait for the "broker listening" log line; default 20s.
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

// Process is a running `kchaos broker` child process. Its methods are for the test goroutine
// that started it.
type Process struct {
	t       testing.TB
	bin     string
	nodeID  int
	dataDir string
	sets    []string
	metrics string

	cmd         *exec.Cmd
	addr        string
	metricsAddr string
	done        chan struct{} // closed when cmd has exited
	waitErr     error         // cmd.Wait's result, set before done is closed
	stderr      *logBuffer
	// logs keeps the stderr of earlier runs (before a Restart) for failure messages.
	logs []string
}

// Start builds the broker binary if needed, starts a broker listening on 127.0.0.1:0 and
// waits (up to StartTimeout) until it accepts connections. The broker is stopped when the
// test ends; if it logged a data race or the test failed, its stderr is logged.
func Start(t testing.TB, opts ...Option) *Process {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, bin: bin, nodeID: 1}
	for _, o := range opts {
		o(p)
	}
	if p.dataDir == "" {
		p.dataDir = t.TempDir()
	}
	t.Cleanup(p.cleanup)
	if err := p.start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return p
}

// Addr returns the broker's client address, HOST:PORT.
func (p *Process) Addr() string { return p.addr }

// MetricsAddr returns the metrics listener's address, or "" when metrics are off.
func (p *Process) MetricsAddr() string { return p.metricsAddr }

// DataDir returns the broker's data directory.
func (p *Process) DataDir() string { return p.dataDir }

// Stderr returns what the current broker process has logged so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Kill sends SIGKILL and waits for the process to exit: no flush, no clean shutdown.
func (p *Process) Kill() {
	p.t.Helper()
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for a clean exit, failing the test if the broker does not exit
// within StopTimeout (it is then killed) or exits with an error.
func (p *Process) Stop() {
	p.t.Helper()
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.t.Errorf("brokertest: broker did not exit within %v of SIGTERM\n%s", StopTimeout, p.Stderr())
		return
	}
	if err := p.waitErr; err != nil {
		p.t.Errorf("brokertest: broker exited with %v after SIGTERM\n%s", err, p.Stderr())
	}
}

// Restart stops the broker if it still runs (SIGTERM) and starts it again on the same data
// directory and, when it is free, the same port.
func (p *Process) Restart() {
	p.t.Helper()
	p.Stop()
	p.checkRace()
	p.logs = append(p.logs, p.Stderr())
	if err := p.start(p.addr); err != nil {
		// The old port may have been taken meanwhile; any port will do.
		if err2 := p.start("127.0.0.1:0"); err2 != nil {
			p.t.Fatalf("%v\n%v", err, err2)
		}
	}
}

// start runs the binary listening on listen and waits for its "broker listening" line.
func (p *Process) start(listen string) error {
	args := []string{"broker", "--node-id", fmt.Sprint(p.nodeID), "--listen", listen, "--data-dir", p.dataDir}
	for _, s := range p.sets {
		args = append(args, "--set", s)
	}
	if p.metrics != "" {
		args = append(args, "--metrics", p.metrics)
	}
	cmd := exec.Command(p.bin, args...)
	// The race runtime sleeps 1s at exit by default; a broker's exit needs no grace period.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("brokertest: %w", err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("brokertest: start %s: %w", p.bin, err)
	}
	pw.Close()
	p.cmd = cmd
	p.done = make(chan struct{})
	p.stderr = &logBuffer{eof: make(chan struct{})}
	listening := make(chan string, 1)
	go p.stderr.scan(pr, listening)
	go func(done chan struct{}) {
		p.waitErr = cmd.Wait()
		close(done)
	}(p.done)
	select {
	case line := <-listening:
		p.addr = field(line, "addr")
		p.metricsAddr = field(line, "metrics")
		if p.addr == "" {
			p.Kill()
			return fmt.Errorf("brokertest: no addr in %q", line)
		}
		return nil
	case <-p.done:
		<-p.stderr.eof
		return fmt.Errorf("brokertest: broker exited before listening\n%s", p.Stderr())
	case <-time.After(StartTimeout):
		p.Kill()
		return fmt.Errorf("brokertest: broker not listening after %v\n%s", StartTimeout, p.Stderr())
	}
}

func (p *Process) exited() bool {
	if p.cmd == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Process) cleanup() {
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(StopTimeout):
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	if p.stderr == nil {
		return
	}
	p.checkRace()
	if p.t.Failed() {
		p.t.Logf("broker stderr:\n%s%s", strings.Join(p.logs, ""), p.Stderr())
	}
}

// checkRace fails the test if the broker reported a data race. The process must have exited
// (its stderr is complete once the pipe is drained).
func (p *Process) checkRace() {
	<-p.stderr.eof
	if s := p.Stderr(); strings.Contains(s, "WARNING: DATA RACE") {
		p.t.Errorf("brokertest: the broker reported a data race:\n%s", s)
	}
}

var fieldRE = regexp.MustCompile(`(?:^| )([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// field returns the value of key in an slog text line, or "".
func field(line, key string) string {
	for _, m := range fieldRE.FindAllStringSubmatch(line, -1) {
		if m[1] == key {
			return strings.Trim(m[2], `"`)
		}
	}
	return ""
}

// logBuffer collects a process's stderr.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	eof chan struct{}
}

// scan copies r into the buffer line by line, sending the first "broker listening" line to
// listening, and closes eof at the end.
func (l *logBuffer) scan(r *os.File, listening chan<- string) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		l.mu.Lock()
		l.buf.WriteString(line)
		l.buf.WriteByte('\n')
		l.mu.Unlock()
		if !sent && strings.Contains(line, `msg="broker listening"`) {
			listening <- line
			sent = true
		}
	}
	// A line too long for the scanner: keep the rest raw so the child never blocks on a full
	// pipe.
	l.mu.Lock()
	io.Copy(&l.buf, r)
	l.mu.Unlock()
	close(l.eof)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
