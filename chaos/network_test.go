package chaos

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kchaos/kchaos/internal/testkit"
)

// echoUpstream is a loopback TCP echo server standing in for a broker's listener.
func echoUpstream(t *testing.T) string {
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

// linkWorks reports whether a byte crosses link l and comes back within 150ms.
func linkWorks(n *Net, l LinkID) bool {
	c, err := net.DialTimeout("tcp", n.Addr(l), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(150 * time.Millisecond))
	if _, err := c.Write([]byte{1}); err != nil {
		return false
	}
	_, err = io.ReadFull(c, make([]byte, 1))
	return err == nil
}

// meshNet is a full mesh of 3 brokers on the client, kafka and raft planes, each link
// forwarding to an echo server.
func meshNet(t *testing.T, seed int64) *Net {
	t.Helper()
	n := NewNet(seed)
	ids := []int32{1, 2, 3}
	if err := n.Mesh(ids, PlaneClient, PlaneKafka, PlaneRaft); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		for _, pl := range []Plane{PlaneClient, PlaneKafka, PlaneRaft} {
			n.SetUpstream(id, pl, echoUpstream(t))
		}
	}
	t.Cleanup(func() {
		addrs := []string{}
		for _, id := range ids {
			for _, a := range n.Peers(id, PlaneKafka) {
				addrs = append(addrs, a)
			}
		}
		n.Close()
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
				c.Close()
				t.Errorf("proxy %s listens after Net.Close", a)
			}
		}
	})
	return n
}

// TestLocalNetworkFaultsCutExactLinks applies network faults through the local driver to a
// 3-broker link mesh and checks, over real TCP, exactly which directed links stop.
func TestLocalNetworkFaultsCutExactLinks(t *testing.T) {
	seed := int64(testkit.Seed(t))
	n := meshNet(t, seed)
	if got := len(n.Peers(1, PlaneRaft)); got != 2 {
		t.Fatalf("broker 1 has %d raft peers, want 2", got)
	}
	d := &Local{Net: n}
	view := testView(3)
	all := func() []LinkID {
		var out []LinkID
		for to := int32(1); to <= 3; to++ {
			out = append(out, LinkID{Clients, to, PlaneClient})
			for from := int32(1); from <= 3; from++ {
				if from != to {
					out = append(out, LinkID{from, to, PlaneKafka}, LinkID{from, to, PlaneRaft})
				}
			}
		}
		return out
	}()
	cases := []struct {
		f   Fault
		cut func(LinkID) bool
	}{
		// Leader of t-1 is broker 3; its followers are 1 and 2. Clients still reach it.
		{Fault{Kind: LeaderIsolateFromFollowers, Target: Target{Sel: SelLeader, Topic: "t", Partition: 1}},
			func(l LinkID) bool { return l.Plane != PlaneClient && (l.From == 3 || l.To == 3) }},
		{Fault{Kind: Isolate, Target: Target{Sel: SelBroker, Broker: 2}},
			func(l LinkID) bool { return l.From == 2 || l.To == 2 }},
		{Fault{Kind: Isolate, Target: Target{Sel: SelBroker, Broker: 2}, Params: map[string]string{"from": "clients", "mode": "reset"}},
			func(l LinkID) bool { return l.Plane == PlaneClient && l.To == 2 }},
	}
	reg, err := NewRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, c := range cases {
		id := int64(i + 1)
		r, err := Resolve(c.f, view, rand.New(rand.NewPCG(uint64(seed), 1)))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := d.Apply(ctx, reg, id, c.f, r); err != nil {
			t.Fatal(err)
		}
		applied := time.Since(start)
		for _, l := range all {
			if works := linkWorks(n, l); works == c.cut(l) {
				t.Errorf("%s: link %s works=%v", c.f.Kind, l, works)
			}
		}
		start = time.Now()
		if err := reg.UndoFault(ctx, id); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s: applied in %s, healed in %s", c.f.Kind, c.f.Params, applied, time.Since(start))
		for _, l := range all {
			if !linkWorks(n, l) {
				t.Errorf("%s: link %s still cut after heal", c.f.Kind, l)
			}
		}
	}
	// A bridge on 3 brokers cuts exactly one pair, both planes, both directions.
	r, err := Resolve(Fault{Kind: Bridge}, view, rand.New(rand.NewPCG(uint64(seed), 2)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(ctx, reg, 9, Fault{Kind: Bridge}, r); err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, l := range all {
		if !linkWorks(n, l) {
			cut++
		}
	}
	if cut != 4 || len(r.Pairs) != 1 {
		t.Errorf("bridge %+v cut %d links, want 4 (one pair x 2 directions x 2 planes)", r, cut)
	}
	if err := reg.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if l := n.Impaired(); len(l) > 0 {
		t.Fatalf("impaired after heal: %v", l)
	}
}
