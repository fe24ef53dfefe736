package checker

import (
	"fmt"
	"strings"

	"gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/iterator"
	"gonum.org/v1/gonum/graph/simple"
	"gonum.org/v1/gonum/graph/topo"
)

// MaxCycleNodes bounds the nodes one cycle search hands to the strongly connected component
// search, after trimming every node that lies on no cycle of the edges searched; default
// 200,000. A search over it is skipped, and its anomaly is reported as unsearched with the
// reason (GraphResult.Skipped).
var MaxCycleNodes = 200_000

// GraphResult describes the dependency graph of a run with transactions and which cycle
// searches ran.
type GraphResult struct {
	Nodes        int `json:"nodes"`
	Transactions int `json:"transactions"`
	// Edges counts the edges of each kind (ww, wr, rw, process, realtime).
	Edges map[string]int `json:"edges"`
	// Skipped maps a cycle anomaly that was not searched to the reason.
	Skipped map[string]string `json:"skipped,omitempty"`
}

// cycleSearch is one cycle anomaly: the edge kinds its cycles may use and the kind every
// counted component must contain.
type cycleSearch struct {
	names []string // the anomaly; for rw searches G-single then G2
	kinds []int
	need  int
}

var cycleSearches = []cycleSearch{
	{[]string{G0}, []int{edgeWW}, edgeWW},
	{[]string{G0Process}, []int{edgeWW, edgeProcess}, edgeProcess},
	{[]string{G0Realtime}, []int{edgeWW, edgeRealtime}, edgeRealtime},
	{[]string{G1c}, []int{edgeWR}, edgeWR},
	{[]string{G1cProcess}, []int{edgeWR, edgeProcess}, edgeProcess},
	{[]string{G1cRealtime}, []int{edgeWR, edgeRealtime}, edgeRealtime},
	{[]string{GSingle, G2}, []int{edgeWR, edgeRW}, edgeRW},
}

// graphAnalyses builds the dependency graph and runs every cycle search.
func (c *checker) graphAnalyses() (*GraphResult, *depGraph) {
	g := c.buildGraph()
	if g == nil {
		return nil, nil
	}
	res := &GraphResult{Nodes: g.n, Transactions: g.nTxn, Edges: map[string]int{}}
	for k, n := range g.edges() {
		res.Edges[edgeNames[k]] = n
	}
	for _, s := range cycleSearches {
		sub := &subgraph{g: g, kinds: s.kinds}
		sub.trim()
		if len(sub.nodes) > MaxCycleNodes {
			for _, n := range s.names {
				if res.Skipped == nil {
					res.Skipped = map[string]string{}
				}
				res.Skipped[n] = fmt.Sprintf("%d nodes lie on cycles of %s edges, more than the %d searched", len(sub.nodes), kindList(s.kinds), MaxCycleNodes)
			}
			continue
		}
		if len(sub.nodes) > 0 {
			c.searchCycles(sub, s)
		}
	}
	return res, g
}

func kindList(kinds []int) string {
	var s []string
	for _, k := range kinds {
		s = append(s, edgeNames[k])
	}
	return strings.Join(s, "+")
}

// searchCycles counts the strongly connected components of sub that contain an edge of kind
// s.need, with an example cycle through it.
func (c *checker) searchCycles(sub *subgraph, s cycleSearch) {
	comp := make(map[int32]int, len(sub.nodes))
	sccs := topo.TarjanSCC(sub)
	for i, scc := range sccs {
		for _, n := range scc {
			comp[int32(n.ID())] = i
		}
	}
	for i, scc := range sccs {
		if len(scc) < 2 {
			continue
		}
		var witness [][2]int32
		for _, n := range scc {
			u := int32(n.ID())
			for _, v := range sub.g.adj[s.need].succ(u) {
				if ci, ok := comp[v]; ok && ci == i {
					witness = append(witness, [2]int32{u, v})
				}
			}
		}
		if len(witness) == 0 {
			continue
		}
		name, cycle := s.names[0], []step(nil)
		if len(s.names) == 2 { // G-single when some rw edge closes a cycle of wr edges alone
			name = s.names[1]
			for _, w := range witness[:min(len(witness), 16)] {
				if path := sub.path(w[1], w[0], []int{edgeWR}, comp, i); path != nil {
					name, cycle = s.names[0], append([]step{{w[0], s.need}}, path...)
					break
				}
			}
		}
		if cycle == nil {
			w := witness[0]
			cycle = append([]step{{w[0], s.need}}, sub.path(w[1], w[0], sub.kinds, comp, i)...)
		}
		c.an.add(name, func() Example { return c.cycleExample(sub.g, cycle) })
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

// subgraph is the dependency graph restricted to some edge kinds and to the nodes that lie on
// a cycle of them, as a gonum graph.Directed for topo.TarjanSCC.
type subgraph struct {
	g     *depGraph
	kinds []int
	alive []bool
	nodes []int32
}

var _ graph.Directed = (*subgraph)(nil)

// trim keeps the nodes that lie on a cycle of sub's edges, or between two cycles: it removes
// sources and then sinks until none are left (both in linear time).
func (sub *subgraph) trim() {
	g := sub.g
	sub.alive = make([]bool, g.n)
	indeg := make([]int32, g.n)
	for _, k := range sub.kinds {
		for _, v := range g.adj[k].to {
			indeg[v]++
		}
	}
	var queue []int32
	for v := range g.n {
		sub.alive[v] = true
		if indeg[v] == 0 {
			queue = append(queue, int32(v))
		}
	}
	for len(queue) > 0 {
		u := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		sub.alive[u] = false
		for _, k := range sub.kinds {
			for _, v := range g.adj[k].succ(u) {
				if indeg[v]--; indeg[v] == 0 {
					queue = append(queue, v)
				}
			}
		}
	}
	// Sinks: count live successors, and walk live predecessors through a reverse list of
	// the (few) live nodes.
	outdeg := make(map[int32]int32)
	rev := make(map[int32][]int32)
	for u := range g.n {
		if !sub.alive[u] {
			continue
		}
		for _, k := range sub.kinds {
			for _, v := range g.adj[k].succ(int32(u)) {
				if sub.alive[v] {
					outdeg[int32(u)]++
					rev[v] = append(rev[v], int32(u))
				}
			}
		}
		if outdeg[int32(u)] == 0 {
			queue = append(queue, int32(u))
		}
	}
	for len(queue) > 0 {
		v := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		sub.alive[v] = false
		for _, u := range rev[v] {
			if sub.alive[u] {
				if outdeg[u]--; outdeg[u] == 0 {
					queue = append(queue, u)
				}
			}
		}
	}
	for v := range g.n {
		if sub.alive[v] {
			sub.nodes = append(sub.nodes, int32(v))
		}
	}
}

// path finds a shortest path from a to b over the given kinds inside component ci (BFS), as
// steps whose last node leads to b; nil when there is none.
func (sub *subgraph) path(a, b int32, kinds []int, comp map[int32]int, ci int) []step {
	type prev struct {
		node int32
		kind int
	}
	from := map[int32]prev{a: {-1, -1}}
	queue := []int32{a}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if u == b {
			var rev []step
			for v := b; v != a; {
				p := from[v]
				rev = append(rev, step{p.node, p.kind})
				v = p.node
			}
			out := make([]step, 0, len(rev))
			for i := len(rev) - 1; i >= 0; i-- {
				out = append(out, rev[i])
			}
			return out
		}
		for _, k := range kinds {
			for _, v := range sub.g.adj[k].succ(u) {
				if _, ok := from[v]; ok || comp[v] != ci || !sub.alive[v] {
					continue
				}
				from[v] = prev{u, k}
				queue = append(queue, v)
			}
		}
	}
	return nil
}

func (sub *subgraph) has(id int64) bool {
	return id >= 0 && id < int64(sub.g.n) && sub.alive[id]
}

// Node implements graph.Graph.
func (sub *subgraph) Node(id int64) graph.Node {
	if !sub.has(id) {
		return nil
	}
	return simple.Node(id)
}

// Nodes implements graph.Graph.
func (sub *subgraph) Nodes() graph.Nodes {
	ns := make([]graph.Node, len(sub.nodes))
	for i, n := range sub.nodes {
		ns[i] = simple.Node(n)
	}
	return iterator.NewOrderedNodes(ns)
}

// From implements graph.Graph: the live successors over sub's kinds.
func (sub *subgraph) From(id int64) graph.Nodes {
	if !sub.has(id) {
		return graph.Empty
	}
	var ns []graph.Node
	for _, k := range sub.kinds {
		for _, v := range sub.g.adj[k].succ(int32(id)) {
			if sub.alive[v] {
				ns = append(ns, simple.Node(v))
			}
		}
	}
	return iterator.NewOrderedNodes(ns)
}

// To implements graph.Directed: the live predecessors (a scan; the cycle search never asks).
func (sub *subgraph) To(id int64) graph.Nodes {
	var ns []graph.Node
	for _, u := range sub.nodes {
		if sub.HasEdgeFromTo(int64(u), id) {
			ns = append(ns, simple.Node(u))
		}
	}
	return iterator.NewOrderedNodes(ns)
}

// HasEdgeFromTo implements graph.Directed.
func (sub *subgraph) HasEdgeFromTo(uid, vid int64) bool {
	if !sub.has(uid) || !sub.has(vid) {
		return false
	}
	for _, k := range sub.kinds {
		for _, v := range sub.g.adj[k].succ(int32(uid)) {
			if int64(v) == vid {
				return true
			}
		}
	}
	return false
}

// HasEdgeBetween implements graph.Graph.
func (sub *subgraph) HasEdgeBetween(xid, yid int64) bool {
	return sub.HasEdgeFromTo(xid, yid) || sub.HasEdgeFromTo(yid, xid)
}

// Edge implements graph.Graph.
func (sub *subgraph) Edge(uid, vid int64) graph.Edge {
	if !sub.HasEdgeFromTo(uid, vid) {
		return nil
	}
	return simple.Edge{F: simple.Node(uid), T: simple.Node(vid)}
}
