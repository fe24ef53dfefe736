package checker

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"gonum.org/v1/gonum/graph/simple"
	"gonum.org/v1/gonum/graph/topo"
)

// TestComponentsMatchGonum: the iterative Tarjan over the dependency graph's arrays finds the
// same strongly connected components (of two or more nodes) as gonum's TarjanSCC, on random
// graphs with edges of several kinds searched over a subset of the kinds, and every example
// path it returns is a path of the searched kinds inside the component. The seed is printed;
// KCHAOS_SEED replays it.
func TestComponentsMatchGonum(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("KCHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed: %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	for round := range 200 {
		n := 1 + rng.IntN(60)
		g := &depGraph{n: n}
		for range rng.IntN(3 * n) {
			g.link(rng.IntN(edgeKinds), int32(rng.IntN(n)), int32(rng.IntN(n)))
		}
		// Keep the pending edges for gonum before build consumes them.
		var all [edgeKinds][]uint64
		for k := range edgeKinds {
			all[k] = slices.Clone(g.pending[k])
		}
		g.build()
		kinds := []int{edgeWW, edgeRealtime}
		if round%2 == 1 {
			kinds = []int{edgeWR}
		}
		s := newSCCState(n)
		s.components(g, kinds)

		dg := simple.NewDirectedGraph()
		for v := range n {
			dg.AddNode(simple.Node(v))
		}
		for _, k := range kinds {
			for _, e := range all[k] {
				dg.SetEdge(simple.Edge{F: simple.Node(e >> 32), T: simple.Node(uint32(e))})
			}
		}
		want := map[int64]int{} // node → gonum component, for components of two or more
		wantComps := 0
		for _, scc := range topo.TarjanSCC(dg) {
			if len(scc) < 2 {
				continue
			}
			for _, v := range scc {
				want[v.ID()] = wantComps
			}
			wantComps++
		}
		if len(s.comps) != wantComps {
			t.Fatalf("round %d: %d components, gonum finds %d", round, len(s.comps), wantComps)
		}
		for v := range n {
			wi, inWant := want[int64(v)]
			ci := s.comp[v]
			if inWant != (ci >= 0) {
				t.Fatalf("round %d: node %d on a cycle: %v, gonum says %v", round, v, ci >= 0, inWant)
			}
			for u := range n {
				wu, uIn := want[int64(u)]
				if inWant && uIn && (wi == wu) != (ci == s.comp[u]) {
					t.Fatalf("round %d: nodes %d and %d grouped differently from gonum", round, v, u)
				}
			}
		}
		for _, members := range s.comps {
			a, b := members[0], members[len(members)-1]
			path := s.path(g, a, b, kinds)
			if a != b && path == nil {
				t.Fatalf("round %d: no path from %d to %d inside their component", round, a, b)
			}
			at := a
			for i, st := range path {
				next := b
				if i+1 < len(path) {
					next = path[i+1].node
				}
				if st.node != at || !slices.Contains(kinds, st.kind) || !slices.Contains(g.adj[st.kind].succ(at), next) {
					t.Fatalf("round %d: path %v from %d to %d is not a path of kinds %v", round, path, a, b, kinds)
				}
				at = next
			}
		}
	}
}
