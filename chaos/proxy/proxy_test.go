package proxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kchaos/kchaos/internal/testkit"
)

// echoServer accepts on loopback and echoes every byte; it is closed with the test.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, seed int64) *Proxy {
	t.Helper()
	t.Logf("seed: %d", seed)
	p, err := New("test", "127.0.0.1:0", echoServer(t), seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
			c.Close()
			t.Errorf("proxy %s still accepts after Close", p.Addr())
		}
	})
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ping writes msg and reads its echo within timeout; it returns the round trip or an error.
func ping(c net.Conn, msg []byte, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	c.SetDeadline(start.Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return 0, err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return 0, err
	}
	if !bytes.Equal(got, msg) {
		return 0, io.ErrUnexpectedEOF
	}
	return time.Since(start), nil
}

func TestForwardsBytesUnchanged(t *testing.T) {
	seed := int64(testkit.Seed(t))
	p := newProxy(t, seed)
	c := dial(t, p)
	data := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(uint64(seed), 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if _, err := ping(c, data, 5*time.Second); err != nil {
		t.Fatalf("1MiB echo through the proxy: %v", err)
	}
}

func TestBlackholeHoldsThenResumesSameConnection(t *testing.T) {
	p := newProxy(t, 1)
	c := dial(t, p)
	if _, err := ping(c, []byte("before"), time.Second); err != nil {
		t.Fatal(err)
	}
	p.Set("f1", Impairment{Cut: true})
	if _, err := ping(c, []byte("during"), 300*time.Millisecond); err == nil {
		t.Fatal("bytes crossed a cut link")
	}
	fresh := dial(t, p)
	if _, err := ping(fresh, []byte("new"), 300*time.Millisecond); err == nil {
		t.Fatal("a new connection crossed a cut link")
	}
	// Two faults cut the link; lifting one keeps it cut.
	p.Set("f2", Impairment{Cut: true})
	p.Clear("f1")
	if _, err := ping(fresh, []byte("x"), 200*time.Millisecond); err == nil {
		t.Fatal("link flowed while a second fault still cut it")
	}
	healed := time.Now()
	p.Clear("f2")
	// The bytes written during the cut arrive first, then a new round trip works.
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, len("during"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "during" {
		t.Fatalf("held bytes after heal: %q %v", got, err)
	}
	t.Logf("held bytes delivered %s after heal", time.Since(healed))
	if _, err := ping(c, []byte("after"), time.Second); err != nil {
		t.Fatalf("same connection after heal: %v", err)
	}
	if p.Impaired() {
		t.Fatal("impaired after every fault cleared")
	}
}

func TestResetClosesConnections(t *testing.T) {
	p := newProxy(t, 1)
	c := dial(t, p)
	if _, err := ping(c, []byte("a"), time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Set("f", Impairment{Cut: true, Reset: true})
	c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection survived a reset cut")
	}
	t.Logf("reset took effect in %s", time.Since(start))
	fresh := dial(t, p)
	fresh.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := fresh.Read(make([]byte, 1)); err == nil {
		t.Fatal("new connection not closed during a reset cut")
	}
	p.Clear("f")
	if _, err := ping(dial(t, p), []byte("b"), time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	deadline := time.Now().Add(time.Second)
	for p.Conns() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.Conns(); n != 1 {
		t.Fatalf("%d proxied connections, want only the one opened after heal", n)
	}
}

func TestLatencyWithJitter(t *testing.T) {
	p := newProxy(t, 7)
	c := dial(t, p)
	p.Set("lat", Impairment{Latency: 40 * time.Millisecond, Jitter: 10 * time.Millisecond})
	var sum time.Duration
	const n = 12
	lo, hi := time.Hour, time.Duration(0)
	for range n {
		rtt, err := ping(c, []byte("p"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		sum += rtt
		lo, hi = min(lo, rtt), max(hi, rtt)
	}
	mean := sum / n
	t.Logf("rtt with 40ms±10ms each way: mean %s min %s max %s", mean, lo, hi)
	// Each round trip crosses the link twice: 60..100ms plus scheduling noise.
	if lo < 60*time.Millisecond || mean < 70*time.Millisecond || mean > 130*time.Millisecond {
		t.Fatalf("rtt mean %s min %s, want about 80ms and never under 60ms", mean, lo)
	}
	p.Clear("lat")
	rtt, err := ping(c, []byte("p"), time.Second)
	if err != nil || rtt > 30*time.Millisecond {
		t.Fatalf("rtt after heal %s %v", rtt, err)
	}
}

func TestLossStallsByRTO(t *testing.T) {
	p := newProxy(t, 11)
	c := dial(t, p)
	p.Set("loss", Impairment{Loss: 0.5, RTO: 60 * time.Millisecond})
	stalled := 0
	const n = 30
	for range n {
		rtt, err := ping(c, []byte("p"), 2*time.Second)
		if err != nil {
			t.Fatalf("loss must never drop a connection: %v", err)
		}
		if rtt >= 60*time.Millisecond {
			stalled++
		}
	}
	// Each round trip has two chunks, each held with p=0.5: 3/4 of pings stall on average.
	t.Logf("%d of %d round trips stalled", stalled, n)
	if stalled < n/3 || stalled == n {
		t.Fatalf("%d of %d round trips stalled; want about 3/4", stalled, n)
	}
}

func TestBandwidthLimit(t *testing.T) {
	p := newProxy(t, 3)
	c := dial(t, p)
	data := bytes.Repeat([]byte("b"), 100<<10)
	fast, err := ping(c, data, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p.Set("bw", Impairment{Bandwidth: 200 << 10})
	slow, err := ping(c, data, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100KiB echo: %s unlimited, %s at 200KiB/s each way", fast, slow)
	// Both directions are limited but pipelined: about 0.5s.
	if slow < 400*time.Millisecond || slow > 1500*time.Millisecond {
		t.Fatalf("100KiB at 200KiB/s took %s, want about 500ms", slow)
	}
}

// TestUpstreamDownResetsClient: while the upstream refuses, a client's connection is reset
// (as a dead broker's would be, so clients retry), never left open or closed in order.
func TestUpstreamDownResetsClient(t *testing.T) {
	p, err := New("dead", "127.0.0.1:0", "127.0.0.1:1", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 5 {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial while the upstream refuses: %v, want a reset", err)
			}
			continue
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read while the upstream refuses: %v, want a connection reset", err)
		}
	}
	p.SetUpstream(echoServer(t))
	if _, err := ping(dial(t, p), []byte("up"), time.Second); err != nil {
		t.Fatalf("after SetUpstream: %v", err)
	}
}

// TestUpstreamResetResetsClient: an upstream that dies with the request unread (a killed
// broker's kernel resets the connection) reaches the client as a reset, as without the
// proxy, not as an orderly close (franz-go gives up on EOF during its first request, but
// retries a reset).
func TestUpstreamResetResetsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 1)) // the first byte of the request arrived
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	p, err := New("reset", "127.0.0.1:0", ln.Addr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	if _, err := c.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the upstream reset: %v, want a connection reset", err)
	}
}

// TestCombineCorruptProduceOnly: fetch responses stay clean only while every corrupting
// fault is produce-only; the chances still add up.
func TestCombineCorruptProduceOnly(t *testing.T) {
	produce := Impairment{Corrupt: 0.5, CorruptProduceOnly: true}
	both := Impairment{Corrupt: 0.5}
	for _, c := range []struct {
		name        string
		ims         map[string]Impairment
		produceOnly bool
		corrupt     float64
	}{
		{"produce only", map[string]Impairment{"a": produce}, true, 0.5},
		{"two produce-only faults", map[string]Impairment{"a": produce, "b": produce}, true, 0.75},
		{"with one on both directions", map[string]Impairment{"a": produce, "b": both}, false, 0.75},
		{"with a fault that corrupts nothing", map[string]Impairment{"a": produce, "b": {Latency: time.Millisecond}}, true, 0.5},
		{"no corruption", map[string]Impairment{"b": {Latency: time.Millisecond}}, false, 0},
	} {
		got := combine(c.ims)
		if got.CorruptProduceOnly != c.produceOnly || got.Corrupt != c.corrupt {
			t.Errorf("%s: produce-only %v, corrupt %v; want %v, %v", c.name, got.CorruptProduceOnly, got.Corrupt, c.produceOnly, c.corrupt)
		}
	}
}
