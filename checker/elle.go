package checker

import (
	"fmt"
	"slices"
	"sort"
)

// Edge kinds of the dependency graph (see the transactional anomalies in anomaly.go).
const (
	edgeWW = iota
	edgeWR
	edgeRW
	edgeProcess
	edgeRealtime
	edgeKinds
)

var edgeNames = [edgeKinds]string{"ww", "wr", "rw", "process", "realtime"}

// depGraph is the dependency graph over the transactions that did not abort and the polls of
// a run with transactions: nodes 0..len(txnNode) are transactions, then polls. Each kind of
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

// build turns the pending edges into sorted, deduplicated adjacency lists.
func (g *depGraph) build() {
	for k := range edgeKinds {
		es := g.pending[k]
		slices.Sort(es)
		es = slices.Compact(es)
		c := csr{start: make([]int32, g.n+1), to: make([]int32, len(es))}
		for i, e := range es {
			c.start[e>>32+1]++
			c.to[i] = int32(uint32(e))
		}
		for v := range g.n {
			c.start[v+1] += c.start[v]
		}
		g.adj[k] = c
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

// graphRead is what one node read of one partition: the highest offset.
type graphRead struct {
	node int32
	part int32
	off  int64
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
	for i := range c.vals.len() {
		v := c.vals.at(int32(i))
		if v.txn >= 0 && v.readPart >= 0 {
			seen[v.txn] = true
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
	writer := func(id int32) int32 {
		v := c.vals.at(id)
		if v.txn < 0 || !c.exists(id) {
			return -1
		}
		return txnNode[v.txn]
	}
	// Reads: polls, and the inputs of each transaction's outputs.
	var reads []graphRead
	for i := range c.pollNodes {
		for _, r := range c.pollNodes[i].reads {
			reads = append(reads, graphRead{int32(g.nTxn + i), r.part, r.off})
		}
	}
	lastWrite := newPairTable(len(c.txns), len(c.parts)) // highest offset per (transaction, partition), + 1
	for i := range c.vals.len() {
		id := int32(i)
		v := c.vals.at(id)
		if v.txn < 0 {
			continue
		}
		if pid, off := v.ackPart, v.ackOffset; pid >= 0 && off >= 0 && c.exists(id) && off+1 > lastWrite.get(v.txn, pid) {
			lastWrite.set(v.txn, pid, off+1)
		}
		if v.flags&flOutput == 0 || v.in < 0 || txnNode[v.txn] < 0 {
			continue
		}
		in := c.vals.at(v.in)
		if in.txn == v.txn {
			g.precommitted = append(g.precommitted, v.in)
		}
		if in.readPart >= 0 {
			reads = append(reads, graphRead{txnNode[v.txn], in.readPart, in.readOffset})
		}
	}
	sort.Slice(reads, func(i, j int) bool {
		a, b := reads[i], reads[j]
		return a.part < b.part || (a.part == b.part && (a.off < b.off || (a.off == b.off && a.node < b.node)))
	})
	// ww, wr and rw in one walk of each partition's log in offset order.
	ri := 0
	for pid, p := range c.parts {
		for ri < len(reads) && reads[ri].part < int32(pid) {
			ri++
		}
		prev := int32(-1)
		var waiting []int32 // readers whose highest read is below the current offset
		p.log.scan(0, 1<<62, func(off int64, id int32) bool {
			if !c.exists(id) {
				return true
			}
			w := writer(id)
			if w >= 0 {
				g.link(edgeWW, prev, w)
				prev = w
				for _, r := range waiting {
					g.link(edgeRW, r, w)
				}
				waiting = waiting[:0]
			}
			for ; ri < len(reads) && reads[ri].part == int32(pid) && reads[ri].off <= off; ri++ {
				r := reads[ri]
				if r.off == off {
					g.link(edgeWR, w, r.node)
					if v := c.vals.at(id); w >= 0 && w != r.node && lastWrite.get(v.txn, int32(pid)) > off+1 {
						c.reportG1b(r, id, p)
					}
				}
				waiting = append(waiting, r.node)
			}
			return true
		})
	}
	c.orderEdges(g)
	g.build()
	return g
}

// reportG1b reports a read whose highest offset holds a write its transaction followed with
// another write to the partition.
func (c *checker) reportG1b(r graphRead, id int32, p *part) {
	v := c.vals.at(id)
	c.an.add(G1b, func() Example {
		return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{r.off},
			Start: v.invoke, End: max(v.done, v.firstRead), Process: int(v.proc),
			Detail: fmt.Sprintf("the highest offset a read saw holds an intermediate write of transaction %d", c.txns[v.txn].id)}
	})
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
	sort.Slice(sp, func(i, j int) bool {
		a, b := sp[i], sp[j]
		return a.proc < b.proc || (a.proc == b.proc && (a.start < b.start || (a.start == b.start && a.node > b.node)))
	})
	for i := 1; i < len(sp); i++ {
		if sp[i].proc == sp[i-1].proc && sp[i].proc >= 0 {
			g.link(edgeProcess, sp[i-1].node, sp[i].node)
		}
	}
	type event struct {
		t    int64
		end  bool
		node int32
	}
	evs := make([]event, 0, 2*len(sp))
	for _, s := range sp {
		if s.start < 0 {
			continue
		}
		evs = append(evs, event{s.start, false, s.node})
		if s.end >= 0 {
			evs = append(evs, event{s.end, true, s.node})
		}
	}
	// At equal times starts come first: realtime order is strict.
	sort.Slice(evs, func(i, j int) bool {
		return evs[i].t < evs[j].t || (evs[i].t == evs[j].t && !evs[i].end && evs[j].end)
	})
	preds := make(map[int32][]int32) // node → the frontier when it started, until it ends
	var frontier []int32
	in := make([]bool, g.n)
	for _, e := range evs {
		if !e.end {
			ps := make([]int32, 0, len(frontier))
			for _, f := range frontier {
				if in[f] {
					g.link(edgeRealtime, f, e.node)
					ps = append(ps, f)
				}
			}
			preds[e.node] = ps
			continue
		}
		for _, f := range preds[e.node] {
			in[f] = false
		}
		delete(preds, e.node)
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
