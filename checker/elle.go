package checker

import (
	"cmp"
	"slices"
)

// Edge kinds of the dependency graph (see the transactional anomalies in anomaly.go).
const (
	edgeWW = iota
	edgeWR
	edgeProcess
	edgeRealtime
	edgeKinds
)

var edgeNames = [edgeKinds]string{"ww", "wr", "process", "realtime"}

// depGraph is the dependency graph over the transactions that did not abort and the polls of
// a run with transactions: nodes 0..len(txnOf) are transactions, then polls. Each kind of
// edge is a compressed sparse row list of successors, deduplicated.
type depGraph struct {
	n       int
	txnOf   []int32 // node → transaction index, for transaction nodes
	nTxn    int
	adj     [edgeKinds]csr
	pending [edgeKinds][]uint64 // from<<32 | to, before build
	// precommitted are inputs of outputs their own transaction sent, reported once the
	// parallel analyses are done (reporting sets a value flag).
	precommitted []int32
}

// csr is an adjacency list: the successors of node v are to[start[v]:start[v+1]].
type csr struct {
	start []int32
	to    []int32
}

func (g csr) succ(v int32) []int32 {
	if g.start == nil {
		return nil
	}
	return g.to[g.start[v]:g.start[v+1]]
}

func (g *depGraph) link(kind int, from, to int32) {
	if from == to || from < 0 || to < 0 {
		return
	}
	p := &g.pending[kind]
	e := uint64(from)<<32 | uint64(uint32(to))
	if n := len(*p); n > 0 && (*p)[n-1] == e {
		return
	}
	*p = append(*p, e)
}

// build turns the pending edges into adjacency lists, sorted and deduplicated per node: a
// counting sort by source (linear in the edges; the ww edges of a 10M-operation history
// number millions), then a sort of each node's few successors.
func (g *depGraph) build() {
	for k := range edgeKinds {
		es := g.pending[k]
		start := make([]int32, g.n+1)
		for _, e := range es {
			start[e>>32+1]++
		}
		for v := range g.n {
			start[v+1] += start[v]
		}
		next := slices.Clone(start[:g.n])
		to := make([]int32, len(es))
		for _, e := range es {
			u := e >> 32
			to[next[u]] = int32(uint32(e))
			next[u]++
		}
		// Compact in place: node v's list moves down to w, which never passes its start.
		w := int32(0)
		for v := range g.n {
			s := to[start[v]:start[v+1]]
			if len(s) > 1 {
				slices.Sort(s)
				s = slices.Compact(s)
			}
			start[v] = w
			w += int32(copy(to[w:], s))
		}
		start[g.n] = w
		g.adj[k] = csr{start: start, to: to[:w]}
		g.pending[k] = nil
	}
}

// edges counts the edges of each kind.
func (g *depGraph) edges() [edgeKinds]int {
	var n [edgeKinds]int
	for k := range edgeKinds {
		n[k] = len(g.adj[k].to)
	}
	return n
}

// buildGraph builds the dependency graph of a run with transactions; nil without.
func (c *checker) buildGraph() *depGraph {
	if !c.graphOn() {
		return nil
	}
	g := &depGraph{}
	// A transaction is a node when it did not abort and it committed or a read saw it.
	txnNode := make([]int32, len(c.txns))
	seen := make([]bool, len(c.txns))
	writes := 0 // bounds the ww edges: sizing their list up front saves copies of millions
	for i := range c.vals.len() {
		v := c.vals.at(int32(i))
		if v.txn >= 0 {
			writes++
			if v.readPart >= 0 {
				seen[v.txn] = true
			}
		}
	}
	for i := range c.txns {
		t := &c.txns[i]
		txnNode[i] = -1
		if !t.aborted && (t.committed || seen[i]) {
			txnNode[i] = int32(len(g.txnOf))
			g.txnOf = append(g.txnOf, int32(i))
		}
	}
	g.nTxn = len(g.txnOf)
	g.n = g.nTxn + len(c.pollNodes)
	g.pending[edgeWW] = make([]uint64, 0, writes)
	g.pending[edgeProcess] = make([]uint64, 0, g.n)
	g.pending[edgeRealtime] = make([]uint64, 0, 2*g.n)
	writer := func(id int32) int32 {
		if id < 0 {
			return -1
		}
		v := c.vals.at(id)
		if v.txn < 0 || !c.exists(id) {
			return -1
		}
		return txnNode[v.txn]
	}
	// wr: from the writer of the highest offset a node read on a partition to the node. Reads
	// are polls, and the inputs of each transaction's outputs.
	for i := range c.pollNodes {
		for _, r := range c.pollNodes[i].reads {
			g.link(edgeWR, writer(c.parts[r.part].log.get(r.off)), int32(g.nTxn+i))
		}
	}
	for i := range c.vals.len() {
		v := c.vals.at(int32(i))
		if v.txn < 0 || v.flags&flOutput == 0 || v.in < 0 || txnNode[v.txn] < 0 {
			continue
		}
		in := c.vals.at(v.in)
		if in.txn == v.txn {
			g.precommitted = append(g.precommitted, v.in)
		}
		if in.readPart >= 0 {
			g.link(edgeWR, writer(c.parts[in.readPart].log.get(in.readOffset)), txnNode[v.txn])
		}
	}
	// ww: each partition's log in offset order.
	for _, p := range c.parts {
		prev := int32(-1)
		p.log.scan(0, 1<<62, func(_ int64, id int32) bool {
			if w := writer(id); w >= 0 {
				g.link(edgeWW, prev, w)
				prev = w
			}
			return true
		})
	}
	c.orderEdges(g)
	g.build()
	return g
}

// nodeSpan is a node's process and interval, for process and realtime edges.
type nodeSpan struct {
	node       int32
	proc       int32
	start, end int64 // end < 0: never completed
}

func (c *checker) spans(g *depGraph) []nodeSpan {
	out := make([]nodeSpan, 0, g.n)
	for n, ti := range g.txnOf {
		t := &c.txns[ti]
		out = append(out, nodeSpan{int32(n), t.proc, t.start, t.end})
	}
	for i, p := range c.pollNodes {
		out = append(out, nodeSpan{int32(g.nTxn + i), p.proc, p.call, p.ret})
	}
	return out
}

// orderEdges adds process edges (each node of a process to its next, by start) and realtime
// edges (Elle's frontier: a node starting links from every completed node not yet followed by
// another completed node that started after it ended).
func (c *checker) orderEdges(g *depGraph) {
	sp := c.spans(g)
	slices.SortFunc(sp, func(a, b nodeSpan) int {
		return cmp.Or(cmp.Compare(a.proc, b.proc), cmp.Compare(a.start, b.start), cmp.Compare(b.node, a.node))
	})
	for i := 1; i < len(sp); i++ {
		if sp[i].proc == sp[i-1].proc && sp[i].proc >= 0 {
			g.link(edgeProcess, sp[i-1].node, sp[i].node)
		}
	}
	// Events: a start at t<<1, an end at t<<1|1, so that at equal times starts come first
	// (realtime order is strict).
	type event struct {
		at   int64
		node int32
	}
	evs := make([]event, 0, 2*len(sp))
	for _, s := range sp {
		if s.start < 0 {
			continue
		}
		evs = append(evs, event{s.start << 1, s.node})
		if s.end >= 0 {
			evs = append(evs, event{s.end<<1 | 1, s.node})
		}
	}
	slices.SortFunc(evs, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	// A node's predecessors are the realtime edges linked when it started: pending[lo:hi].
	rt := &g.pending[edgeRealtime]
	predLo, predHi := make([]int32, g.n), make([]int32, g.n)
	var frontier []int32
	in := make([]bool, g.n)
	for _, e := range evs {
		if e.at&1 == 0 {
			predLo[e.node] = int32(len(*rt))
			for _, f := range frontier {
				if in[f] {
					g.link(edgeRealtime, f, e.node)
				}
			}
			predHi[e.node] = int32(len(*rt))
			continue
		}
		for _, pe := range (*rt)[predLo[e.node]:predHi[e.node]] {
			in[pe>>32] = false
		}
		in[e.node] = true
		live := frontier[:0]
		for _, f := range frontier {
			if in[f] {
				live = append(live, f)
			}
		}
		frontier = append(live, e.node)
	}
}
