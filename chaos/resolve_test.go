package chaos

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kchaos/kchaos/internal/testkit"
)

func testView(n int) ClusterView {
	v := ClusterView{Controller: 2, Topics: map[string][]PartitionView{}}
	for i := 1; i <= n; i++ {
		v.Brokers = append(v.Brokers, int32(i))
	}
	v.Topics["t"] = []PartitionView{
		{Partition: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
		{Partition: 1, Leader: 3, Replicas: []int32{3, 1, 2}, ISR: []int32{3, 1}},
		{Partition: 2, Leader: -1, Replicas: []int32{2, 3, 1}},
	}
	return v
}

func TestSelect(t *testing.T) {
	v := testView(5)
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		target string
		want   []int32
		size   int
		err    bool
	}{
		{target: "leader(t,0)", want: []int32{1}},
		{target: "leader(t,1)", want: []int32{3}},
		{target: "leader(t,2)", err: true},
		{target: "leader(t,9)", err: true},
		{target: "leader(nope,0)", err: true},
		{target: "followers(t,1)", want: []int32{1, 2}},
		{target: "controller", want: []int32{2}},
		{target: "broker(4)", want: []int32{4}},
		{target: "all", want: []int32{1, 2, 3, 4, 5}},
		{target: "random", size: 1},
		{target: "minority", size: 2},
		{target: "majority", size: 3},
	}
	for _, c := range cases {
		tg, err := ParseTarget(c.target)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Select(tg, v, rng)
		if c.err {
			if err == nil {
				t.Errorf("%s: no error, got %v", c.target, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.target, err)
			continue
		}
		if c.want != nil && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %v, want %v", c.target, got, c.want)
		}
		if c.size > 0 && len(got) != c.size {
			t.Errorf("%s = %v, want %d brokers", c.target, got, c.size)
		}
	}
	// leader(t) picks only partitions that have a leader.
	tg, _ := ParseTarget("leader(t)")
	for range 50 {
		got, err := Select(tg, v, rng)
		if err != nil || (got[0] != 1 && got[0] != 3) {
			t.Fatalf("leader(t) = %v %v", got, err)
		}
	}
	if _, err := Select(Target{Sel: SelController}, ClusterView{Controller: -1}, rng); err == nil {
		t.Error("controller resolved with no controller in Metadata")
	}
}

// reach returns, for each broker, the set of brokers it can reach (itself included).
func reach(brokers []int32, pairs [][2]int32) map[int32][]int32 {
	out := map[int32][]int32{}
	for _, a := range brokers {
		for _, b := range brokers {
			if a == b || !slices.Contains(pairs, orderPair(a, b)) {
				out[a] = append(out[a], b)
			}
		}
	}
	return out
}

func TestNetworkShapes(t *testing.T) {
	rng := testkit.Rand(t)
	for n := 3; n <= 7; n++ {
		v := testView(n)
		maj := n/2 + 1
		halves, err := Resolve(Fault{Kind: PartitionHalves}, v, rng)
		if err != nil {
			t.Fatal(err)
		}
		if len(halves.Nodes) != n/2 || len(halves.Pairs) != (n/2)*(n-n/2) {
			t.Errorf("n=%d halves: small side %v, %d cut pairs", n, halves.Nodes, len(halves.Pairs))
		}
		br, err := Resolve(Fault{Kind: Bridge}, v, rng)
		if err != nil {
			t.Fatal(err)
		}
		r := reach(v.Brokers, br.Pairs)
		if len(br.Nodes) != 1 || len(r[br.Nodes[0]]) != n {
			t.Errorf("n=%d bridge %v does not reach everyone: %v", n, br.Nodes, r)
		}
		ring, err := Resolve(Fault{Kind: MajoritiesRing}, v, rng)
		if err != nil {
			t.Fatal(err)
		}
		r = reach(v.Brokers, ring.Pairs)
		seen := map[string]int32{}
		for b, set := range r {
			if len(set) < maj {
				t.Errorf("n=%d ring: broker %d reaches %v, not a majority", n, b, set)
			}
			k := slicesKey(set)
			if other, dup := seen[k]; dup && n > 3 {
				t.Errorf("n=%d ring: brokers %d and %d see the same majority %v", n, b, other, set)
			}
			seen[k] = b
		}
		if len(ring.Pairs) == 0 {
			t.Errorf("n=%d ring cuts nothing", n)
		}
	}
}

func slicesKey(s []int32) string {
	c := slices.Clone(s)
	slices.Sort(c)
	b := make([]byte, 0, len(c)*2)
	for _, x := range c {
		b = append(b, byte(x), ',')
	}
	return string(b)
}

func TestResolveIsolateAndLeaderFromFollowers(t *testing.T) {
	v := testView(3)
	rng := rand.New(rand.NewPCG(5, 5))
	r, err := Resolve(Fault{Kind: Isolate, Target: Target{Sel: SelBroker, Broker: 2}, Params: map[string]string{"from": "peers"}}, v, rng)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, Resolved{Nodes: []int32{2}, Pairs: [][2]int32{{1, 2}, {2, 3}}}) {
		t.Errorf("isolate from peers: %+v", r)
	}
	r, _ = Resolve(Fault{Kind: Isolate, Target: Target{Sel: SelBroker, Broker: 2}, Params: map[string]string{"from": "clients"}}, v, rng)
	if !reflect.DeepEqual(r, Resolved{Nodes: []int32{2}, Clients: true}) {
		t.Errorf("isolate from clients: %+v", r)
	}
	r, err = Resolve(Fault{Kind: LeaderIsolateFromFollowers, Target: Target{Sel: SelLeader, Topic: "t", Partition: 1}}, v, rng)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, Resolved{Nodes: []int32{3}, Pairs: [][2]int32{{1, 3}, {2, 3}}}) || r.Clients {
		t.Errorf("leader isolate: %+v", r)
	}
	r, err = Resolve(Fault{Kind: Partition, Target: Target{Sel: SelLeader, Topic: "t", Partition: 0}, Params: map[string]string{"from": "followers(t,0)"}}, v, rng)
	if err != nil || !reflect.DeepEqual(r.Pairs, [][2]int32{{1, 2}, {1, 3}}) {
		t.Errorf("partition leader from followers: %+v %v", r, err)
	}
}

// TestKafkaResolverAgainstKfake resolves targets through real Metadata requests to a
// 3-broker kfake cluster, and follows a leader move.
func TestKafkaResolverAgainstKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := NewKafkaResolver(c.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := res.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.Brokers, []int32{0, 1, 2}) || !slices.Contains(v.Brokers, v.Controller) || len(v.Topics["t"]) != 4 {
		t.Fatalf("view %+v", v)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for p := int32(0); p < 4; p++ {
		got, err := Select(Target{Sel: SelLeader, Topic: "t", Partition: p}, v, rng)
		if err != nil || got[0] != c.LeaderFor("t", p) {
			t.Fatalf("leader(t,%d) = %v %v, kfake says %d", p, got, err, c.LeaderFor("t", p))
		}
	}
	to := (c.LeaderFor("t", 0) + 1) % 3
	if err := c.MoveTopicPartition("t", 0, to); err != nil {
		t.Fatal(err)
	}
	v, err = res.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Select(Target{Sel: SelLeader, Topic: "t", Partition: 0}, v, rng)
	if err != nil || got[0] != to {
		t.Fatalf("after the move leader(t,0) = %v %v, want %d", got, err, to)
	}
}
