package chaos_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/internal/e2e"
)

func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }

// testCluster is n standalone kchaos brokers from the e2e fixture (ids 1..n), each reached
// by clients only through its client link proxy.
type testCluster struct {
	*e2e.Cluster
}

func startTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return &testCluster{e2e.StartStandalone(t, n)}
}

func (c *testCluster) driver() *chaos.Local { return c.Driver().(*chaos.Local) }

// probe sends one ApiVersions v0 request to broker id through its client proxy on a new
// connection and reports whether it was answered within timeout.
func (c *testCluster) probe(id int32, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", c.Net().Addr(chaos.LinkID{From: chaos.Clients, To: id, Plane: chaos.PlaneClient}), timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	// size, api key 18, version 0, correlation id 7, null client id
	req := []byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff}
	if _, err := conn.Write(req); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(hdr[4:]) != 7 {
		return fmt.Errorf("correlation id %d", binary.BigEndian.Uint32(hdr[4:]))
	}
	return nil
}

// assertHealed checks nothing of a fault is left: every broker runs and is not stopped, no
// link is impaired, nothing is pending, and each broker answers through its proxy.
func assertHealed(t *testing.T, c *testCluster, pending []chaos.Record) {
	t.Helper()
	if len(pending) > 0 {
		t.Errorf("pending changes after heal: %+v", pending)
	}
	if l := c.Net().Impaired(); len(l) > 0 {
		t.Errorf("impaired links after heal: %v", l)
	}
	for _, n := range c.Nodes() {
		id := n.ID
		if !n.Running() {
			t.Errorf("broker %d not running after heal", id)
			continue
		}
		if st := processState(t, n.Pid()); st == 'T' {
			t.Errorf("broker %d (pid %d) still stopped after heal", id, n.Pid())
		}
		if err := c.probe(id, 5*time.Second); err != nil {
			t.Errorf("broker %d does not answer after heal: %v", id, err)
		}
	}
}

// TestLocalFaultTimings applies each fault kind of the local driver to a real broker
// process and measures the time until it takes effect (as a client sees it) and the time
// from heal until the broker answers again.
func TestLocalFaultTimings(t *testing.T) {
	c := startTestCluster(t, 1)
	d := c.driver()
	reg, err := chaos.NewRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx := context.Background()
	target := chaos.Resolved{Nodes: []int32{1}, Clients: true}
	down := func() bool { return c.probe(1, 150*time.Millisecond) != nil }
	up := func() bool { return c.probe(1, 300*time.Millisecond) == nil }
	cases := []struct {
		f     chaos.Fault
		check func(t *testing.T)
	}{
		{f: chaos.Fault{Kind: chaos.Kill}},
		{f: chaos.Fault{Kind: chaos.Stop}},
		{f: chaos.Fault{Kind: chaos.Pause}, check: func(t *testing.T) {
			if st := processState(t, c.Node(1).Pid()); st != 'T' {
				t.Fatalf("paused broker in state %c, want T", st)
			}
		}},
		{f: chaos.Fault{Kind: chaos.Isolate, Params: map[string]string{"from": "clients"}}},
		{f: chaos.Fault{Kind: chaos.Isolate, Params: map[string]string{"from": "clients", "mode": "reset"}}},
	}
	for i, tc := range cases {
		name := string(tc.f.Kind) + "/" + tc.f.Params["mode"]
		id := int64(i + 1)
		until(t, name+": healthy before", 10*time.Second, up)
		start := time.Now()
		if err := d.Apply(ctx, reg, id, tc.f, target); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		applied := time.Since(start)
		effect := until(t, name+": takes effect", 5*time.Second, down) + applied
		if tc.check != nil {
			tc.check(t)
		}
		healStart := time.Now()
		if err := reg.UndoFault(ctx, id); err != nil {
			t.Fatalf("%s heal: %v", name, err)
		}
		until(t, name+": heals", 30*time.Second, up)
		heal := time.Since(healStart)
		t.Logf("fault %-22s apply %-12s effect seen %-12s healed (answering) %s", name, applied.Round(time.Microsecond), effect.Round(time.Millisecond), heal.Round(time.Millisecond))
	}
	// Restart has no duration: it is done when Apply returns.
	start := time.Now()
	if err := d.Apply(ctx, reg, 99, chaos.Fault{Kind: chaos.Restart}, target); err != nil {
		t.Fatal(err)
	}
	t.Logf("fault %-22s back and answering after %s", "restart", (until(t, "restart answers", 30*time.Second, up) + time.Since(start)).Round(time.Millisecond))
	// Latency and loss on the client link show in a round trip.
	base := rtt(t, c)
	if err := d.Apply(ctx, reg, 100, chaos.Fault{Kind: chaos.Latency, Params: map[string]string{"delay": "100ms", "links": "clients"}}, target); err != nil {
		t.Fatal(err)
	}
	slow := rtt(t, c)
	reg.UndoFault(ctx, 100)
	after := rtt(t, c)
	t.Logf("fault %-22s metadata round trip %s -> %s -> healed %s", "latency 100ms", base.Round(time.Millisecond), slow.Round(time.Millisecond), after.Round(time.Millisecond))
	if slow < 200*time.Millisecond || slow > 350*time.Millisecond || after > 100*time.Millisecond {
		t.Errorf("latency 100ms each way: round trip %s, after heal %s", slow, after)
	}
	assertHealed(t, c, reg.Pending())
}

// rtt measures one ApiVersions round trip on an established connection to broker 1.
func rtt(t *testing.T, c *testCluster) time.Duration {
	t.Helper()
	conn, err := net.DialTimeout("tcp", c.Net().Addr(chaos.LinkID{From: chaos.Clients, To: 1, Plane: chaos.PlaneClient}), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var took time.Duration
	for range 2 { // the first round trip opens the upstream connection
		start := time.Now()
		if _, err := conn.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff}); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, make([]byte, binary.BigEndian.Uint32(size[:]))); err != nil {
			t.Fatal(err)
		}
		took = time.Since(start)
	}
	return took
}

// TestRunnerRecordsAndHeals runs a schedule on two brokers and checks the history's fault
// events and that nothing is left afterwards.
func TestRunnerRecordsAndHeals(t *testing.T) {
	c := startTestCluster(t, 2)
	faults, err := chaos.ParseYAML("t.yaml", []byte(`
- {kind: pause, target: broker(1), at: 200ms, for: 700ms}
- {kind: isolate, target: broker(2), params: {from: clients}, at: 300ms, for: 500ms}
- {kind: kill, target: broker(2), at: 1s, for: 300ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	hw := history.NewWriter(&buf)
	dir := t.TempDir()
	r, err := chaos.Start(context.Background(), faults, chaos.Env{Seed: 5, Duration: 2 * time.Second, Driver: c.driver(),
		Resolver: c.Resolver(), History: hw, RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// broker 1 is paused from 200ms to 900ms, broker 2 cut from clients from 300ms to 800ms.
	until(t, "broker 1 paused mid-fault", time.Second, func() bool { return processState(t, c.Node(1).Pid()) == 'T' })
	until(t, "broker 2 unreachable by clients while isolated from them", time.Second, func() bool {
		return c.probe(2, 200*time.Millisecond) != nil
	})
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if f := r.Failures(); len(f) > 0 {
		t.Fatalf("failures: %v", f)
	}
	hw.Close()
	rd := history.NewReader(&buf, "history")
	type ph struct {
		kind  string
		phase string
		nodes []int32
	}
	var got []ph
	for {
		var e history.Event
		if err := rd.Next(&e); err != nil {
			break
		}
		if e.F != history.FFault || e.Process != history.ProcessNemesis {
			t.Fatalf("unexpected event %+v", e)
		}
		got = append(got, ph{e.Fault.Kind, e.Fault.Phase, e.Fault.Nodes})
		if e.Fault.Error != "" {
			t.Errorf("fault error: %+v", e.Fault)
		}
	}
	want := []ph{{"pause", "start", []int32{1}}, {"isolate", "start", []int32{2}}, {"isolate", "end", []int32{2}},
		{"pause", "end", []int32{1}}, {"kill", "start", []int32{2}}, {"kill", "end", []int32{2}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history faults:\n%v\nwant\n%v", got, want)
	}
	pending, err := chaos.ReadJournal(dir)
	if err != nil || len(pending) > 0 {
		t.Fatalf("journal pending after run: %+v %v", pending, err)
	}
	assertHealed(t, c, r.Pending())
}

// TestRunnerHealsOnCancelAndSignal stops a run mid-fault, by cancelling its context and by
// SIGTERM, and checks everything is undone at once.
func TestRunnerHealsOnCancelAndSignal(t *testing.T) {
	c := startTestCluster(t, 1)
	// Keep SIGTERM from ending the test binary whatever the runner does.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)
	faults := []chaos.Fault{{Kind: chaos.Pause, Target: chaos.Target{Sel: chaos.SelBroker, Broker: 1}, At: chaos.Duration(100 * time.Millisecond), For: chaos.Duration(time.Minute)},
		{Kind: chaos.Isolate, Target: chaos.Target{Sel: chaos.SelBroker, Broker: 1}, Params: map[string]string{"from": "clients"}, At: chaos.Duration(100 * time.Millisecond), For: chaos.Duration(time.Minute)}}
	for _, how := range []string{"cancel", "SIGTERM"} {
		ctx, cancel := context.WithCancel(context.Background())
		r, err := chaos.Start(ctx, faults, chaos.Env{Seed: 1, Duration: 2 * time.Minute, Driver: c.driver(), Resolver: c.Resolver(), RunDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		until(t, how+": pause applied", 5*time.Second, func() bool { return processState(t, c.Node(1).Pid()) == 'T' })
		until(t, how+": isolate applied", 5*time.Second, func() bool { return len(c.Net().Impaired()) == 1 })
		start := time.Now()
		if how == "cancel" {
			cancel()
		} else {
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}
		until(t, how+": healed", 10*time.Second, func() bool {
			return processState(t, c.Node(1).Pid()) != 'T' && len(c.Net().Impaired()) == 0
		})
		t.Logf("%s healed in %s", how, time.Since(start).Round(time.Microsecond))
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		cancel()
		assertHealed(t, c, r.Pending())
	}
}

// TestHealDirAfterCrash leaves a broker paused as a crashed harness would, then heals from
// the journal alone; a stopped process that is not a kchaos broker is never touched.
func TestHealDirAfterCrash(t *testing.T) {
	c := startTestCluster(t, 1)
	dir := t.TempDir()
	reg, err := chaos.NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.driver().Apply(context.Background(), reg, 1, chaos.Fault{Kind: chaos.Pause}, chaos.Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	// A stranger: stopped, recorded as if we had paused it, but not a kchaos broker.
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	sleeper.Process.Signal(syscall.SIGSTOP)
	pi, err := chaos.ReadProc(sleeper.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	reg.Add(chaos.Record{Fault: 2, Action: "pause", Node: 9, Pid: sleeper.Process.Pid, PidStart: pi.Start, Cmdline: pi.Cmdline}, nil)
	reg.Close() // the harness dies here: nothing undone

	if st := processState(t, c.Node(1).Pid()); st != 'T' {
		t.Fatalf("broker not paused before heal: %c", st)
	}
	report, err := chaos.HealDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("heal report: %q", report)
	if st := processState(t, c.Node(1).Pid()); st == 'T' {
		t.Fatal("broker still stopped after kchaos chaos heal")
	}
	until(t, "sleeper stays stopped", time.Second, func() bool { return processState(t, sleeper.Process.Pid) == 'T' })
	if len(report) != 2 || !strings.Contains(report[1], "resumed broker 1") || !strings.Contains(report[0], "gone") {
		t.Fatalf("report %q", report)
	}
	if p, err := chaos.ReadJournal(dir); err != nil || len(p) != 0 {
		t.Fatalf("journal still pending after heal: %+v %v", p, err)
	}
	again, err := chaos.HealDir(context.Background(), dir)
	if err != nil || len(again) != 0 {
		t.Fatalf("second heal did %q %v", again, err)
	}
	c.Node(1).Resume() // keep the local.Node's paused flag in step
}
