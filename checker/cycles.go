package checker

import (
	"fmt"
	"strings"
)

// GraphResult describes the dependency graph of a run with transactions.
type GraphResult struct {
	Nodes        int `json:"nodes"`
	Transactions int `json:"transactions"`
	// Edges counts the edges of each kind (ww, wr, process, realtime).
	Edges map[string]int `json:"edges"`
}

// cycleSearch is one cycle anomaly: the edge kinds its cycles may use and the kind every
// counted component must contain.
type cycleSearch struct {
	name  string
	kinds []int
	need  int
}

var cycleSearches = []cycleSearch{
	{G0, []int{edgeWW}, edgeWW},
	{G0Process, []int{edgeWW, edgeProcess}, edgeProcess},
	{G0Realtime, []int{edgeWW, edgeRealtime}, edgeRealtime},
	{G1c, []int{edgeWR}, edgeWR},
	{G1cProcess, []int{edgeWR, edgeProcess}, edgeProcess},
	{G1cRealtime, []int{edgeWR, edgeRealtime}, edgeRealtime},
}

// graphAnalyses builds the dependency graph and runs every cycle search. Each search is
// linear in the graph (see components), so none is ever skipped: a clean 10M-operation
// transactional history has components of hundreds of thousands of nodes (G0 is common in
// Kafka).
func (c *checker) graphAnalyses() (*GraphResult, *depGraph) {
	g := c.buildGraph()
	if g == nil {
		return nil, nil
	}
	res := &GraphResult{Nodes: g.n, Transactions: g.nTxn, Edges: map[string]int{}}
	for k, n := range g.edges() {
		res.Edges[edgeNames[k]] = n
	}
	s := newSCCState(g.n)
	for _, cs := range cycleSearches {
		c.searchCycles(g, s, cs)
	}
	return res, g
}

// searchCycles counts the strongly connected components of g's edges of kinds cs.kinds that
// contain an edge of kind cs.need, with an example cycle through it.
func (c *checker) searchCycles(g *depGraph, s *sccState, cs cycleSearch) {
	s.components(g, cs.kinds)
	for ci, members := range s.comps {
		var witness [2]int32
		found := false
		for _, u := range members {
			for _, v := range g.adj[cs.need].succ(u) {
				if s.comp[v] == int32(ci) {
					witness, found = [2]int32{u, v}, true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			continue
		}
		cycle := append([]step{{witness[0], cs.need}}, s.path(g, witness[1], witness[0], cs.kinds)...)
		ex := c.cycleExample(g, cycle)
		c.an.add(cs.name, ex.Start, ex.End, func() Example { return ex })
	}
}

// step is one node of a cycle and the kind of the edge leaving it.
type step struct {
	node int32
	kind int
}

func (c *checker) nodeName(g *depGraph, n int32) (string, int32, int64, int64) {
	if int(n) < g.nTxn {
		t := &c.txns[g.txnOf[n]]
		return fmt.Sprintf("txn %d (process %d)", t.id, t.proc), t.proc, t.start, t.end
	}
	p := &c.pollNodes[int(n)-g.nTxn]
	return fmt.Sprintf("poll (process %d, t=%d)", p.proc, p.ret), p.proc, p.call, p.ret
}

func (c *checker) cycleExample(g *depGraph, cycle []step) Example {
	ex := Example{Partition: -1, Start: -1}
	var b strings.Builder
	for i, st := range cycle {
		name, proc, start, end := c.nodeName(g, st.node)
		if i == 0 {
			ex.Process = int(proc)
		}
		if ex.Start < 0 || start < ex.Start {
			ex.Start = start
		}
		ex.End = max(ex.End, end)
		fmt.Fprintf(&b, "%s -%s-> ", name, edgeNames[st.kind])
	}
	first, _, _, _ := c.nodeName(g, cycle[0].node)
	b.WriteString(first)
	ex.Detail = b.String()
	return ex
}

// sccState holds the arrays of the component search, reused by every search over one graph.
type sccState struct {
	index, low []int32 // Tarjan's depth-first index (0: unvisited) and low link
	onStack    []bool
	stack      []int32
	calls      []sccFrame
	// comp is each node's component among comps, -1 for a node on no cycle; comps lists the
	// members of each component of two or more nodes.
	comp  []int32
	comps [][]int32
	// prev is the breadth-first search's predecessor of each node (path), -1 unvisited.
	prev     []int32
	prevKind []int8
}

// sccFrame is a node whose successors are being visited: kind indexes the search's kinds,
// next the successor of that kind to visit next.
type sccFrame struct {
	v          int32
	kind, next int32
}

func newSCCState(n int) *sccState {
	s := &sccState{index: make([]int32, n), low: make([]int32, n), onStack: make([]bool, n), comp: make([]int32, n),
		prev: make([]int32, n), prevKind: make([]int8, n)}
	for i := range s.prev {
		s.prev[i] = -1
	}
	return s
}

// components finds the strongly connected components of g's edges of the given kinds with
// Tarjan's algorithm, iteratively (paths in offset order are as long as the log, too deep to
// recurse) and in time linear in the nodes and edges. It fills comp and comps.
func (s *sccState) components(g *depGraph, kinds []int) {
	clear(s.index)
	clear(s.onStack)
	for i := range s.comp {
		s.comp[i] = -1
	}
	s.comps = s.comps[:0]
	counter := int32(0)
	visit := func(v int32) {
		counter++
		s.index[v], s.low[v] = counter, counter
		s.stack = append(s.stack, v)
		s.onStack[v] = true
		s.calls = append(s.calls, sccFrame{v: v})
	}
	for root := range int32(g.n) {
		if s.index[root] != 0 {
			continue
		}
		visit(root)
		for len(s.calls) > 0 {
			f := &s.calls[len(s.calls)-1]
			v := f.v
			descended := false
			for int(f.kind) < len(kinds) && !descended {
				succ := g.adj[kinds[f.kind]].succ(v)
				for int(f.next) < len(succ) {
					w := succ[f.next]
					f.next++
					if s.index[w] == 0 {
						visit(w) // f is stale from here on
						descended = true
						break
					}
					if s.onStack[w] {
						s.low[v] = min(s.low[v], s.index[w])
					}
				}
				if !descended {
					f.kind, f.next = f.kind+1, 0
				}
			}
			if descended {
				continue
			}
			s.calls = s.calls[:len(s.calls)-1]
			if n := len(s.calls); n > 0 {
				p := s.calls[n-1].v
				s.low[p] = min(s.low[p], s.low[v])
			}
			if s.low[v] != s.index[v] {
				continue
			}
			i := len(s.stack) - 1
			for s.stack[i] != v {
				i--
			}
			members := s.stack[i:]
			for _, m := range members {
				s.onStack[m] = false
			}
			if len(members) > 1 {
				ci := int32(len(s.comps))
				for _, m := range members {
					s.comp[m] = ci
				}
				s.comps = append(s.comps, append([]int32(nil), members...))
			}
			s.stack = s.stack[:i]
		}
	}
}

// path finds a shortest path from a to b over the given kinds inside a's component
// (breadth-first), as steps whose last node leads to b; nil when there is none.
func (s *sccState) path(g *depGraph, a, b int32, kinds []int) []step {
	ci := s.comp[a]
	visited := []int32{a}
	s.prev[a] = a
	defer func() {
		for _, v := range visited {
			s.prev[v] = -1
		}
	}()
	for qi := 0; qi < len(visited); qi++ {
		u := visited[qi]
		if u == b {
			var rev []step
			for v := b; v != a; v = s.prev[v] {
				rev = append(rev, step{s.prev[v], int(s.prevKind[v])})
			}
			out := make([]step, 0, len(rev))
			for i := len(rev) - 1; i >= 0; i-- {
				out = append(out, rev[i])
			}
			return out
		}
		for _, k := range kinds {
			for _, v := range g.adj[k].succ(u) {
				if s.prev[v] >= 0 || s.comp[v] != ci {
					continue
				}
				s.prev[v], s.prevKind[v] = u, int8(k)
				visited = append(visited, v)
			}
		}
	}
	return nil
}
