package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kchaos/kchaos/internal/testkit"
)

// needNetns skips the test, saying why, unless this process can build a fabric.
func needNetns(t *testing.T) {
	t.Helper()
	testkit.Need(t, "root, iproute2 and network namespaces (the netns driver)", NetnsAvailable())
}

// newTestFabric builds a fabric of n brokers journalled in dir and, at cleanup, removes it and
// checks that nothing of it is left.
func newTestFabric(t *testing.T, dir string, n int) *Fabric {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	f, err := NewFabric(ctx, dir, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fabric %s of %d namespaces built in %s (host %s; netem: %v; htb: %v)", f.RunID, n,
		time.Since(start).Round(time.Millisecond), f.HostAddr, errOrOK(f.netemErr), errOrOK(f.htbErr))
	t.Cleanup(func() {
		if err := f.Close(context.Background()); err != nil {
			t.Errorf("fabric close: %v", err)
		}
		checkNoLeftovers(t, f)
		if p := f.Pending(); len(p) > 0 {
			t.Errorf("fabric changes pending after close: %+v", p)
		}
	})
	return f
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// checkNoLeftovers fails t if any namespace, link, mount or root-namespace nftables table of
// f exists (tables in f's namespaces go with them).
func checkNoLeftovers(t *testing.T, f *Fabric) {
	t.Helper()
	tag := NetnsPrefix + f.RunID
	for _, argv := range [][]string{{"ip", "netns", "list"}, {"ip", "link", "show"}} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v", strings.Join(argv, " "), err)
		}
		if strings.Contains(string(out), tag) {
			t.Errorf("%s after close still lists %s:\n%s", strings.Join(argv, " "), tag, out)
		}
	}
	for _, m := range kchaosMounts() {
		if strings.HasPrefix(m[0], tag) {
			t.Errorf("tmpfs %s still mounted on %s", m[0], m[1])
		}
	}
	tables, err := kchaosTables("")
	if err != nil {
		t.Errorf("list root nftables tables: %v", err)
	}
	for _, tb := range tables {
		if strings.HasPrefix(tb, tag) {
			t.Errorf("nftables table %s left in the root namespace", tb)
		}
	}
}

// inNetns runs fn on a thread moved into network namespace ns; sockets fn creates live there.
// The thread is never returned to the Go scheduler, so it ends with fn's goroutine.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if ns != "" {
			fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- err
				return
			}
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
			if err != nil {
				errc <- fmt.Errorf("setns %s: %w", ns, err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

// echoListeners starts a TCP listener on port 7000 of every broker address of f, each in its
// namespace, accepting and closing connections until cleanup.
func echoListeners(t *testing.T, f *Fabric, ids []int32) {
	t.Helper()
	for _, id := range ids {
		var ln net.Listener
		err := inNetns(f.Namespace(id), func() error {
			var err error
			ln, err = net.Listen("tcp", netip.AddrPortFrom(f.Addr(id), 7000).String())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(io.Discard, c); c.Close() }()
			}
		}()
	}
}

// dialLink connects from broker from's namespace (Clients: the root namespace) to broker to's
// listener and reports the error (nil: connected).
func dialLink(f *Fabric, from, to int32, timeout time.Duration) error {
	ns := ""
	if from != Clients {
		ns = f.Namespace(from)
	}
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(f.Addr(to), 7000).String(), timeout)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// reachability dials every ordered pair of ids and from clients to each, in parallel, and
// returns the links that did not connect ("1->2", "client->3"), and how each failed: "refused"
// (a reset answered the SYN) or "timeout" (dropped).
func reachability(f *Fabric, ids []int32, timeout time.Duration) ([]string, map[string]string) {
	var mu sync.Mutex
	var cut []string
	how := map[string]string{}
	var wg sync.WaitGroup
	for _, from := range append([]int32{Clients}, ids...) {
		for _, to := range ids {
			if from == to {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := dialLink(f, from, to, timeout); err != nil {
					l := LinkID{From: from, To: to, Plane: PlaneKafka}.String()
					mu.Lock()
					cut = append(cut, l)
					var ne net.Error
					switch {
					case errors.Is(err, syscall.ECONNREFUSED):
						how[l] = "refused"
					case errors.As(err, &ne) && ne.Timeout():
						how[l] = "timeout"
					default:
						how[l] = err.Error()
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	slices.Sort(cut)
	return cut, how
}

// wantCut renders what r promises to cut as reachability's output.
func wantCut(r Resolved) []string {
	var out []string
	for _, p := range r.Pairs {
		out = append(out, LinkID{From: p[0], To: p[1], Plane: PlaneKafka}.String(), LinkID{From: p[1], To: p[0], Plane: PlaneKafka}.String())
	}
	if r.Clients {
		for _, n := range r.Nodes {
			out = append(out, LinkID{From: Clients, To: n, Plane: PlaneKafka}.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestNetnsCutKindsDropPackets resolves every cut kind on a 5-broker view, applies it with the
// netns driver and dials every directed link: exactly the links the fault resolved to are
// cut (a blackholed dial times out; mode=reset is refused at once), and after the fault ends
// every link connects again.
func TestNetnsCutKindsDropPackets(t *testing.T) {
	needNetns(t)
	rng := testkit.Rand(t)
	ids := []int32{1, 2, 3, 4, 5}
	f := newTestFabric(t, "", len(ids))
	echoListeners(t, f, ids)
	if cut, _ := reachability(f, ids, 2*time.Second); len(cut) > 0 {
		t.Fatalf("links cut before any fault: %v", cut)
	}
	view := ClusterView{Brokers: ids, Controller: 1, Topics: map[string][]PartitionView{
		"t": {{Partition: 0, Leader: 2, Replicas: []int32{2, 3, 4}, ISR: []int32{2, 3, 4}}}}}
	reg, err := NewRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	drv := &Netns{Fabric: f}
	faults := []Fault{
		{Kind: Isolate, Target: Target{Sel: SelBroker, Broker: 3}},
		{Kind: Isolate, Target: Target{Sel: SelBroker, Broker: 4}, Params: map[string]string{"from": "clients", "mode": "reset"}},
		{Kind: Partition, Target: Target{Sel: SelBroker, Broker: 1}, Params: map[string]string{"mode": "reset"}},
		{Kind: PartitionHalves, Params: map[string]string{"mode": "reset"}},
		{Kind: MajoritiesRing, Params: map[string]string{"mode": "reset"}},
		{Kind: Bridge, Params: map[string]string{"mode": "reset"}},
		{Kind: LeaderIsolateFromFollowers, Target: Target{Sel: SelLeader, Topic: "t", Partition: 0}},
	}
	for i, fl := range faults {
		id := int64(i + 1)
		r, err := Resolve(fl, view, rng)
		if err != nil {
			t.Fatalf("%s: %v", fl.Kind, err)
		}
		if !slices.Contains(drv.Kinds(), fl.Kind) {
			t.Fatalf("netns driver kinds %v lack %s", drv.Kinds(), fl.Kind)
		}
		start := time.Now()
		if err := drv.Apply(context.Background(), reg, id, fl, r); err != nil {
			t.Fatalf("%s: %v", fl.Kind, err)
		}
		applied := time.Since(start)
		got, how := reachability(f, ids, 700*time.Millisecond)
		if want := wantCut(r); !slices.Equal(got, want) {
			t.Errorf("%s (%s) resolved to %+v: cut links %v, want %v", fl.Kind, fl.param("mode", "blackhole"), r, got, want)
		}
		wantHow := map[string]string{"blackhole": "timeout", "reset": "refused"}[fl.param("mode", "blackhole")]
		for l, h := range how {
			if h != wantHow {
				t.Errorf("%s mode=%s: dial %s failed with %q, want %s", fl.Kind, fl.param("mode", "blackhole"), l, h, wantHow)
			}
		}
		hstart := time.Now()
		if err := reg.UndoFault(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		healed := time.Since(hstart)
		if cut, _ := reachability(f, ids, 2*time.Second); len(cut) > 0 {
			t.Errorf("%s: links still cut after its end: %v", fl.Kind, cut)
		}
		t.Logf("%s %s: rules in place (apply) %s, %d links cut, rules gone (undo) %s", fl.Kind, fl.param("mode", "blackhole"),
			applied.Round(time.Microsecond), len(wantCut(r)), healed.Round(time.Microsecond))
	}
	for id := int32(1); id <= 5; id++ {
		if tbs, err := kchaosTables(f.Namespace(id)); err != nil || len(tbs) > 0 {
			t.Errorf("broker %d's namespace has tables %v after every fault ended (%v)", id, tbs, err)
		}
	}
}

// TestNetnsPartitionCutsEstablishedConnection shows a blackhole cut acting on packets of a
// connection opened before it: bytes written across it are not delivered until the cut ends.
func TestNetnsPartitionCutsEstablishedConnection(t *testing.T) {
	needNetns(t)
	f := newTestFabric(t, "", 2)
	var ln net.Listener
	if err := inNetns(f.Namespace(2), func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(f.Addr(2), 7001).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 16)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for {
			b := make([]byte, 64)
			n, err := c.Read(b)
			if err != nil {
				return
			}
			got <- b[:n]
		}
	}()
	var c net.Conn
	if err := inNetns(f.Namespace(1), func() error {
		var err error
		c, err = net.Dial("tcp", netip.AddrPortFrom(f.Addr(2), 7001).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("before"))
	if b := <-got; string(b) != "before" {
		t.Fatalf("got %q", b)
	}
	reg, _ := NewRegistry("")
	fl := Fault{Kind: Partition, Target: Target{Sel: SelBroker, Broker: 1}}
	if err := (&Netns{Fabric: f}).Apply(context.Background(), reg, 1, fl, Resolved{Nodes: []int32{1}, Pairs: [][2]int32{{1, 2}}}); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("during"))
	select {
	case b := <-got:
		t.Fatalf("%q crossed the cut", b)
	case <-time.After(1500 * time.Millisecond):
	}
	start := time.Now()
	if err := reg.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		t.Logf("bytes written during the cut arrived %s after heal (TCP retransmission)", time.Since(start).Round(time.Millisecond))
		if string(b) != "during" {
			t.Errorf("got %q after heal, want \"during\"", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bytes written during the cut did not arrive within 10s of heal")
	}
}

// TestNetnsDegradationQdiscs checks the degradation kinds against the kernel: latency and
// loss use the netem qdisc where the kernel has it, else the userspace netem (nfqueue.go),
// which must delay exactly the links param "links" picks and heal when the fault ends; with
// htb, bandwidth slows exactly the links "links" picks (a transfer from a client, from another
// broker, or both) to the rate, and its end removes the qdiscs.
func TestNetnsDegradationQdiscs(t *testing.T) {
	needNetns(t)
	f := newTestFabric(t, "", 2)
	drv := &Netns{Fabric: f}
	reg, _ := NewRegistry("")
	r := Resolved{Nodes: []int32{1}}
	userspace := errors.Join(f.htbErr, f.netemErr) != nil
	if userspace && f.nfqErr != nil {
		t.Fatalf("neither netem (%v) nor nfnetlink_queue (%v): latency and loss cannot run", f.netemErr, f.nfqErr)
	}
	t.Logf("netem: %v; latency and loss in userspace: %v", f.netemErr, userspace)
	var echo net.Listener
	if err := inNetns(f.Namespace(1), func() error {
		var err error
		echo, err = net.Listen("tcp", netip.AddrPortFrom(f.Addr(1), 7003).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	// rtt is how long a connection from `from` takes to open and echo one byte.
	rtt := func(from int32) time.Duration {
		ns := ""
		if from != Clients {
			ns = f.Namespace(from)
		}
		start := time.Now()
		err := inNetns(ns, func() error {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(f.Addr(1), 7003).String(), 10*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			b := []byte{1}
			if _, err := c.Write(b); err != nil {
				return err
			}
			_, err = io.ReadFull(c, b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	const delay = 100 * time.Millisecond
	for i, links := range []string{"clients", "peers"} {
		id := int64(1 + i)
		fl := Fault{Kind: Latency, Params: map[string]string{"delay": delay.String(), "links": links}}
		start := time.Now()
		if err := drv.Apply(context.Background(), reg, id, fl, r); err != nil {
			t.Fatal(err)
		}
		applied := time.Since(start)
		client, peer := rtt(Clients), rtt(2)
		healStart := time.Now()
		if err := reg.UndoFault(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		after := rtt(Clients)
		t.Logf("latency %v links=%s: Apply %v; connect+echo from a client %v, from broker 2 %v; undo %v, then from a client %v",
			delay, links, applied, client.Round(time.Millisecond), peer.Round(time.Millisecond), time.Since(healStart).Round(time.Millisecond), after.Round(time.Millisecond))
		slow, fast := client, peer
		if links == "peers" {
			slow, fast = peer, client
		}
		// Each packet is held once on the way in and once on the way out: a round trip costs
		// 2 delays, and connect plus echo take two round trips.
		if slow < 2*delay || fast > delay || after > delay {
			t.Errorf("links=%s: delayed path %v, other path %v, after the fault %v", links, slow, fast, after)
		}
	}
	fl := Fault{Kind: Loss, Params: map[string]string{"rate": "30%"}}
	if err := drv.Apply(context.Background(), reg, 5, fl, r); err != nil {
		t.Fatal(err)
	}
	var lossy []time.Duration
	for range 4 {
		lossy = append(lossy, rtt(Clients))
	}
	if err := reg.UndoFault(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	slices.Sort(lossy)
	t.Logf("loss 30%%: connect+echo from a client %v (sorted), after the fault %v", lossy, rtt(Clients))
	if lossy[len(lossy)-1] < 150*time.Millisecond {
		t.Errorf("30%% loss never cost a retransmission in 4 connections: %v", lossy)
	}
	if tables, _ := kchaosTables(f.Namespace(1)); len(tables) > 0 {
		t.Errorf("tables left in broker 1's namespace: %v", tables)
	}
	if f.htbErr != nil {
		t.Logf("htb missing (%v): bandwidth is left out", f.htbErr)
		if slices.Contains(drv.Kinds(), Bandwidth) {
			t.Error("Kinds() has bandwidth without htb")
		}
		return
	}
	var ln net.Listener
	if err := inNetns(f.Namespace(1), func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(f.Addr(1), 7002).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan int64, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			received <- n
		}
	}()
	const size = 512 << 10
	send := func(from int32) time.Duration {
		start := time.Now()
		ns := ""
		if from != Clients {
			ns = f.Namespace(from)
		}
		err := inNetns(ns, func() error {
			c, err := net.Dial("tcp", netip.AddrPortFrom(f.Addr(1), 7002).String())
			if err != nil {
				return err
			}
			c.Write(make([]byte, size))
			return c.Close()
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := <-received; n != size {
			t.Fatalf("received %d bytes, sent %d", n, size)
		}
		return time.Since(start)
	}
	t.Logf("512KiB to broker 1 unlimited: %s from a client, %s from broker 2", send(Clients).Round(time.Millisecond), send(2).Round(time.Millisecond))
	for i, links := range []string{"both", "clients", "peers"} {
		id := int64(10 + i)
		fl := Fault{Kind: Bandwidth, Params: map[string]string{"rate": "256KiB", "links": links}}
		if err := drv.Apply(context.Background(), reg, id, fl, r); err != nil {
			t.Fatal(err)
		}
		client, peer := send(Clients), send(2)
		if err := reg.UndoFault(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		after := send(Clients)
		t.Logf("bandwidth 256KiB/s links=%s: 512KiB from a client %s, from broker 2 %s; after the fault ended %s",
			links, client.Round(time.Millisecond), peer.Round(time.Millisecond), after.Round(time.Millisecond))
		for _, c := range []struct {
			what    string
			took    time.Duration
			limited bool
		}{{"client", client, links != "peers"}, {"broker 2", peer, links != "clients"}, {"client after the fault", after, false}} {
			if c.limited && (c.took < 1500*time.Millisecond || c.took > 5*time.Second) {
				t.Errorf("links=%s: 512KiB from %s at 256KiB/s took %s; want about 2s", links, c.what, c.took)
			}
			if !c.limited && c.took > time.Second {
				t.Errorf("links=%s: 512KiB from %s, not limited, took %s", links, c.what, c.took)
			}
		}
	}
	for _, argv := range [][]string{{"tc", "qdisc", "show", "dev", f.nodes[1].veth}, {"tc", "-n", f.Namespace(1), "qdisc", "show", "dev", "eth0"}} {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if strings.Contains(string(out), "htb") {
			t.Errorf("%s after the faults ended: %s", strings.Join(argv, " "), out)
		}
	}
}

// TestNetnsHealDirAfterCrash leaves a cut, a disk filler and the fabric itself to `kchaos chaos
// heal` as a crashed harness would, and checks that healing the run directory removes them all.
func TestNetnsHealDirAfterCrash(t *testing.T) {
	needNetns(t)
	dir := t.TempDir()
	f := newTestFabric(t, dir, 2)
	if err := f.MountData(1, filepath.Join(dir, "cluster", "node-1", "data"), 1<<20); err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	drv := &Netns{Fabric: f, Local: &Local{Nodes: map[int32]Process{}}}
	if err := drv.Apply(context.Background(), reg, 1, Fault{Kind: Isolate}, Resolved{Nodes: []int32{1}, Pairs: [][2]int32{{1, 2}}, Clients: true}); err != nil {
		t.Fatal(err)
	}
	if err := drv.Apply(context.Background(), reg, 2, Fault{Kind: DiskFull}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "cluster", "node-1", "data")
	if err := os.WriteFile(filepath.Join(data, "x"), []byte("x"), 0o644); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to the filled tmpfs: %v, want ENOSPC", err)
	}
	reg.Close() // the harness crashes: nothing is undone in process
	for _, d := range []string{dir, filepath.Join(dir, FabricJournalDir)} {
		report, err := HealDir(context.Background(), d)
		if err != nil {
			t.Fatalf("heal %s: %v", d, err)
		}
		t.Logf("heal %s:\n  %s", d, strings.Join(report, "\n  "))
		if p, err := ReadJournal(d); err != nil || len(p) > 0 {
			t.Errorf("journal %s pending after heal: %+v %v", d, p, err)
		}
	}
	checkNoLeftovers(t, f)
	// A second heal finds nothing to do.
	if report, err := HealDir(context.Background(), filepath.Join(dir, FabricJournalDir)); err != nil || len(report) > 0 {
		t.Errorf("second heal: %v %v", report, err)
	}
}

// TestSubnetInUse sees the subnets of this machine's routes and addresses as taken.
func TestSubnetInUse(t *testing.T) {
	if !subnetInUse(netip.MustParsePrefix("127.0.0.0/24")) {
		t.Error("127.0.0.0/24 (loopback) reported free")
	}
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		t.Skipf("no /proc/net/route: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 || f[7] == "00000000" {
			continue
		}
		dst, _ := strconv.ParseUint(f[1], 16, 32)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(dst), byte(dst >> 8), byte(dst >> 16), byte(dst >> 24)}), 24)
		if !subnetInUse(p) {
			t.Errorf("%s, on route %q, reported free", p, line)
		}
	}
}

// TestNetnsCreateLeavesOthersObjects asks a fabric to create a bridge and a namespace that
// already exist, as a second fabric drawing the same run id at the same moment would: the
// creation fails, and neither closing the fabric nor healing its journal removes them.
func TestNetnsCreateLeavesOthersObjects(t *testing.T) {
	needNetns(t)
	dir := t.TempDir()
	owner := newTestFabric(t, "", 1)
	f := newTestFabric(t, dir, 1)
	ctx := context.Background()
	if err := f.create(ctx, Record{Action: "link", Object: owner.Bridge, Undo: "delete"},
		[]string{"ip", "link", "add", owner.Bridge, "type", "bridge"}); err == nil {
		t.Fatal("creating an existing bridge succeeded")
	}
	if err := f.create(ctx, Record{Action: "netns", Netns: owner.Namespace(1), Undo: "delete"},
		[]string{"ip", "netns", "add", owner.Namespace(1)}); err == nil {
		t.Fatal("creating an existing namespace succeeded")
	}
	for _, rec := range f.Pending() {
		if rec.Object == owner.Bridge || rec.Netns == owner.Namespace(1) {
			t.Errorf("fabric %s keeps %+v, which is fabric %s's", f.RunID, rec, owner.RunID)
		}
	}
	if report, err := HealDir(ctx, filepath.Join(dir, FabricJournalDir)); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("healed fabric %s's journal:\n  %s", f.RunID, strings.Join(report, "\n  "))
	}
	if _, err := net.InterfaceByName(owner.Bridge); err != nil {
		t.Errorf("bridge %s of fabric %s is gone: %v", owner.Bridge, owner.RunID, err)
	}
	if _, err := os.Stat("/var/run/netns/" + owner.Namespace(1)); err != nil {
		t.Errorf("namespace %s of fabric %s is gone: %v", owner.Namespace(1), owner.RunID, err)
	}
}
