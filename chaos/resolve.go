package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// ClusterView is what the Kafka protocol says about the cluster when a fault starts.
type ClusterView struct {
	// Brokers are the ids of the brokers in Metadata, sorted.
	Brokers []int32
	// Controller is Metadata's ControllerID, -1 when unknown.
	Controller int32
	// Topics maps a topic to its partitions, indexed by partition id.
	Topics map[string][]PartitionView
}

// PartitionView is one partition's leader and replicas.
type PartitionView struct {
	Partition int32
	// Leader is -1 when the partition has none.
	Leader   int32
	Replicas []int32
	ISR      []int32
	// LeaderEpoch is the partition's leader epoch (-1 when the broker does not report it).
	LeaderEpoch int32
}

// Resolved is what a fault instance acts on, decided when it starts.
type Resolved struct {
	// Nodes are the brokers the fault acts on (its target), sorted; for the kinds that pick
	// brokers themselves, the smaller side (partition-halves) or the bridge node.
	Nodes []int32 `json:"nodes,omitempty"`
	// Pairs are broker pairs whose links are cut both ways (replication, controller, Raft).
	Pairs [][2]int32 `json:"pairs,omitempty"`
	// Clients cuts the links from clients to Nodes.
	Clients bool `json:"clients,omitempty"`
}

// describe renders Pairs for history params: "1-2,1-3".
func (r Resolved) describePairs() string {
	parts := make([]string, len(r.Pairs))
	for i, p := range r.Pairs {
		parts[i] = strconv.Itoa(int(p[0])) + "-" + strconv.Itoa(int(p[1]))
	}
	return strings.Join(parts, ",")
}

// Select returns the brokers t names on view, using rng for random choices. It is pure.
func Select(t Target, view ClusterView, rng *rand.Rand) ([]int32, error) {
	n := len(view.Brokers)
	pick := func(k int) []int32 {
		ids := slices.Clone(view.Brokers)
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		out := ids[:k]
		slices.Sort(out)
		return out
	}
	switch t.Sel {
	case SelLeader, SelFollowers, SelFollower:
		p, err := partitionOf(t, view, rng)
		if err != nil {
			return nil, err
		}
		if t.Sel == SelLeader {
			if p.Leader < 0 {
				return nil, fmt.Errorf("chaos: %s: %s-%d has no leader", t, t.Topic, p.Partition)
			}
			return []int32{p.Leader}, nil
		}
		var out []int32
		for _, r := range p.Replicas {
			if r != p.Leader {
				out = append(out, r)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("chaos: %s: %s-%d has no followers (replicas %v)", t, t.Topic, p.Partition, p.Replicas)
		}
		slices.Sort(out)
		if t.Sel == SelFollower {
			return []int32{out[rng.IntN(len(out))]}, nil
		}
		return out, nil
	case SelController:
		if view.Controller < 0 {
			return nil, fmt.Errorf("chaos: controller: Metadata names no active controller")
		}
		return []int32{view.Controller}, nil
	case SelBroker:
		return []int32{t.Broker}, nil
	case SelConsumer:
		// Consumers are the harness's, not the cluster's: the driver reads the index from
		// the target.
		return nil, nil
	}
	if n == 0 {
		return nil, fmt.Errorf("chaos: %s: Metadata lists no broker", t)
	}
	switch t.Sel {
	case SelRandom:
		return pick(1), nil
	case SelData:
		var data []int32
		for _, b := range view.Brokers {
			if b != view.Controller {
				data = append(data, b)
			}
		}
		if len(data) == 0 {
			return pick(1), nil
		}
		return []int32{data[rng.IntN(len(data))]}, nil
	case SelClients:
		return slices.Clone(view.Brokers), nil
	case SelMinority:
		if (n-1)/2 == 0 {
			return nil, fmt.Errorf("chaos: minority: a minority of %d brokers is empty", n)
		}
		return pick((n - 1) / 2), nil
	case SelMajority:
		return pick(n/2 + 1), nil
	case SelAll:
		return slices.Clone(view.Brokers), nil
	}
	return nil, fmt.Errorf("chaos: unknown target %q", t)
}

// partitionOf returns the partition t names, a random one with a leader for leader(topic).
func partitionOf(t Target, view ClusterView, rng *rand.Rand) (PartitionView, error) {
	ps, ok := view.Topics[t.Topic]
	if !ok || len(ps) == 0 {
		return PartitionView{}, fmt.Errorf("chaos: %s: topic %q is not in Metadata", t, t.Topic)
	}
	if t.Partition >= 0 {
		if int(t.Partition) >= len(ps) {
			return PartitionView{}, fmt.Errorf("chaos: %s: topic %q has %d partitions", t, t.Topic, len(ps))
		}
		return ps[t.Partition], nil
	}
	var led []PartitionView
	for _, p := range ps {
		if p.Leader >= 0 {
			led = append(led, p)
		}
	}
	if len(led) == 0 {
		return PartitionView{}, fmt.Errorf("chaos: %s: no partition of %q has a leader", t, t.Topic)
	}
	return led[rng.IntN(len(led))], nil
}

// Resolve decides what fault f acts on, given the cluster as it is now. It is pure: the same
// fault, view and rng state give the same answer.
func Resolve(f Fault, view ClusterView, rng *rand.Rand) (Resolved, error) {
	var r Resolved
	if !f.Target.IsZero() {
		nodes, err := Select(f.Target, view, rng)
		if err != nil {
			return r, err
		}
		r.Nodes = nodes
		r.Clients = f.Target.Sel == SelClients
	}
	others := func(in []int32) []int32 {
		var out []int32
		for _, b := range view.Brokers {
			if !slices.Contains(in, b) {
				out = append(out, b)
			}
		}
		return out
	}
	shuffled := func() []int32 {
		ids := slices.Clone(view.Brokers)
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		return ids
	}
	switch f.Kind {
	case Isolate:
		from := f.param("from", "both")
		if from != "clients" {
			r.Pairs = cross(r.Nodes, others(r.Nodes))
		}
		r.Clients = from != "peers"
	case Partition:
		from := others(r.Nodes)
		if s := f.Params["from"]; s != "" {
			ft, err := ParseTarget(s)
			if err != nil {
				return r, err
			}
			if from, err = Select(ft, view, rng); err != nil {
				return r, err
			}
		}
		r.Pairs = cross(r.Nodes, from)
	case LeaderIsolateFromFollowers:
		p, err := partitionOf(f.Target, view, rng)
		if err != nil {
			return r, err
		}
		if p.Leader < 0 {
			return r, fmt.Errorf("chaos: %s: partition has no leader", f.Target)
		}
		r.Nodes = []int32{p.Leader}
		var fol []int32
		for _, b := range p.Replicas {
			if b != p.Leader {
				fol = append(fol, b)
			}
		}
		if len(fol) == 0 {
			return r, fmt.Errorf("chaos: %s: %s-%d has no followers to cut off", f.Kind, f.Target.Topic, p.Partition)
		}
		r.Pairs = cross(r.Nodes, fol)
	case PartitionHalves:
		if len(view.Brokers) < 2 {
			return r, fmt.Errorf("chaos: %s needs 2 brokers, Metadata lists %d", f.Kind, len(view.Brokers))
		}
		ids := shuffled()
		a, b := ids[:len(ids)/2], ids[len(ids)/2:]
		r.Nodes = sorted(a)
		r.Pairs = cross(a, b)
	case Bridge:
		if len(view.Brokers) < 3 {
			return r, fmt.Errorf("chaos: %s needs 3 brokers, Metadata lists %d", f.Kind, len(view.Brokers))
		}
		r.Nodes, r.Pairs = bridge(shuffled())
	case MajoritiesRing:
		if len(view.Brokers) < 3 {
			return r, fmt.Errorf("chaos: %s needs 3 brokers, Metadata lists %d", f.Kind, len(view.Brokers))
		}
		r.Nodes, r.Pairs = majoritiesRing(shuffled())
	}
	return r, nil
}

// bridge keeps ids[0] connected to everyone and cuts the rest into two halves.
func bridge(ids []int32) ([]int32, [][2]int32) {
	rest := ids[1:]
	return []int32{ids[0]}, cross(rest[:len(rest)/2], rest[len(rest)/2:])
}

// majoritiesRing places ids on a ring and lets each broker reach the k nearest on each side,
// the fewest that make a majority (itself included); every other pair is cut. When that
// leaves nothing to cut (3 brokers), it is the bridge.
func majoritiesRing(ids []int32) ([]int32, [][2]int32) {
	n := len(ids)
	k := (n / 2) / 2
	if (n/2)%2 != 0 {
		k++
	}
	var pairs [][2]int32
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if d := min(j-i, n-(j-i)); d > k {
				pairs = append(pairs, orderPair(ids[i], ids[j]))
			}
		}
	}
	if len(pairs) == 0 {
		return bridge(ids)
	}
	slices.SortFunc(pairs, comparePairs)
	return nil, pairs
}

func cross(a, b []int32) [][2]int32 {
	var out [][2]int32
	for _, x := range a {
		for _, y := range b {
			if x != y {
				out = append(out, orderPair(x, y))
			}
		}
	}
	slices.SortFunc(out, comparePairs)
	return slices.Compact(out)
}

func orderPair(a, b int32) [2]int32 {
	if a > b {
		a, b = b, a
	}
	return [2]int32{a, b}
}

func comparePairs(a, b [2]int32) int {
	if a[0] != b[0] {
		return int(a[0] - b[0])
	}
	return int(a[1] - b[1])
}

func sorted(ids []int32) []int32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
