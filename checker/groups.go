package checker

import (
	"slices"
	"sort"

	"github.com/kchaos/kchaos/history"
)

// GroupStats is what one consumer group did, from its members' subscribe, assign, poll and
// crash events: each generation's assignment, whether each partition was read by exactly
// one member per generation, and what each rebalance cost.
type GroupStats struct {
	// ID is the group id and Topic the topic its members subscribed to.
	ID    string `json:"id"`
	Topic string `json:"topic"`
	// Members counts the processes that were members at some time.
	Members int `json:"members"`
	// Generations are the generations members were assigned partitions in, in order.
	Generations []Generation `json:"generations"`
	// Rebalances is the number of generations after the first.
	Rebalances int `json:"rebalances"`
	// Shared counts (generation, partition) pairs assigned to, or read by, more than one
	// member: each partition must be read by exactly one member of a generation.
	Shared int64 `json:"shared"`
	// IdleReads counts records read by a member while it had no partition in its
	// generation: members beyond the partition count must read nothing.
	IdleReads int64 `json:"idle_reads"`
}

// Generation is one generation of a group as its members saw it.
type Generation struct {
	Generation int32 `json:"generation"`
	// Start is the time of its first assignment, nanoseconds since the run started.
	Start int64 `json:"start_ns"`
	// Members counts the members assigned in it, Idle those given no partition.
	Members int `json:"members"`
	Idle    int `json:"idle"`
	// Partitions counts the partitions assigned in it.
	Partitions int `json:"partitions"`
	// Pause is the consumption pause the rebalance into this generation caused: the
	// longest time, over the partitions read both before and after Start, from the last
	// read of the partition before Start to its first read after it, in nanoseconds; -1
	// for the first generation or when no partition was read on both sides.
	Pause int64 `json:"pause_ns"`
	// Faults names the kinds of the fault windows in force at Start or ended at most
	// FaultHorizon before it: what the rebalance followed ("restart-consumer").
	Faults []string `json:"faults,omitempty"`
}

// groupState accumulates one group's GroupStats.
type groupState struct {
	id, topic string
	members   map[int32]bool
	gens      map[int32]*genState
	order     []int32
	cur       map[int32]int32 // member process → generation of its latest assignment
	lastRead  map[int32]int64 // partition → time of its last read by any member
	// pending are, per partition, the generations waiting for its first read since they
	// started (to measure their pause).
	pending   map[int32][]*genState
	idleReads int64
}

type genState struct {
	gen      int32
	start    int64
	assigned map[int32][]int32        // member → partitions
	readers  map[int32]map[int32]bool // partition → members that read it
	before   map[int32]int64          // partition → last read before start
	pause    int64
}

// groupOf returns the state of the group m names, creating it.
func (c *checker) groupOf(m *history.Membership, topic string) *groupState {
	if c.groups == nil {
		c.groups = map[string]*groupState{}
	}
	g := c.groups[m.ID]
	if g == nil {
		g = &groupState{id: m.ID, topic: topic, members: map[int32]bool{}, gens: map[int32]*genState{}, cur: map[int32]int32{},
			lastRead: map[int32]int64{}, pending: map[int32][]*genState{}}
		c.groups[m.ID] = g
	}
	return g
}

// groupEvent handles a subscribe or assign event of a group member.
func (c *checker) groupEvent(e *history.Event) {
	if e.Group == nil || e.Group.ID == "" {
		return
	}
	proc := int32(e.Process)
	g := c.groupOf(e.Group, e.Topic)
	g.members[proc] = true
	if c.memberOf == nil {
		c.memberOf = map[int32]*groupState{}
	}
	c.memberOf[proc] = g
	if e.F != history.FAssign || e.Group.Generation <= 0 {
		return
	}
	gs := g.gens[e.Group.Generation]
	if gs == nil {
		gs = &genState{gen: e.Group.Generation, start: e.Time, assigned: map[int32][]int32{}, readers: map[int32]map[int32]bool{},
			before: map[int32]int64{}, pause: -1}
		for p, t := range g.lastRead {
			gs.before[p] = t
			g.pending[p] = append(g.pending[p], gs)
		}
		g.gens[gs.gen] = gs
		g.order = append(g.order, gs.gen)
	}
	parts := make([]int32, 0, len(e.Offsets))
	for _, po := range e.Offsets {
		parts = append(parts, po.Partition)
	}
	gs.assigned[proc] = parts
	g.cur[proc] = gs.gen
}

// groupPoll attributes a member's polled records to its generation.
func (c *checker) groupPoll(e *history.Event) {
	g := c.memberOf[int32(e.Process)]
	if g == nil || len(e.Records) == 0 {
		return
	}
	proc := int32(e.Process)
	var gs *genState
	if gen, ok := g.cur[proc]; ok {
		gs = g.gens[gen]
	}
	if gs != nil && len(gs.assigned[proc]) == 0 {
		g.idleReads += int64(len(e.Records))
	}
	last := int32(-1)
	for _, r := range e.Records {
		p := r.Partition
		if p == last {
			continue // a poll returns a partition's records together
		}
		last = p
		g.lastRead[p] = e.Time
		for _, w := range g.pending[p] {
			w.pause = max(w.pause, e.Time-w.before[p])
		}
		delete(g.pending, p)
		if gs == nil {
			continue
		}
		rs := gs.readers[p]
		if rs == nil {
			rs = map[int32]bool{}
			gs.readers[p] = rs
		}
		rs[proc] = true
	}
}

// groupCrash forgets a crashed member's generation: it reads nothing until assigned again.
func (c *checker) groupCrash(proc int32) {
	if g := c.memberOf[proc]; g != nil {
		delete(g.cur, proc)
	}
}

// groupStats assembles every group's GroupStats, in group id order.
func (c *checker) groupStats() []GroupStats {
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []GroupStats
	for _, id := range ids {
		g := c.groups[id]
		gs := GroupStats{ID: g.id, Topic: g.topic, Members: len(g.members), IdleReads: g.idleReads}
		order := slices.Clone(g.order)
		slices.SortFunc(order, func(a, b int32) int { return int(a) - int(b) })
		for i, n := range order {
			s := g.gens[n]
			gen := Generation{Generation: n, Start: s.start, Members: len(s.assigned), Pause: s.pause}
			if i == 0 {
				gen.Pause = -1
			}
			owners := map[int32]int{}
			for _, parts := range s.assigned {
				if len(parts) == 0 {
					gen.Idle++
				}
				for _, p := range parts {
					owners[p]++
				}
			}
			gen.Partitions = len(owners)
			for p, n := range owners {
				if n > 1 || len(s.readers[p]) > 1 {
					gs.Shared++
				}
			}
			for p, rs := range s.readers {
				if _, assigned := owners[p]; !assigned && len(rs) > 1 {
					gs.Shared++
				}
			}
			for _, w := range c.faults {
				if w.Start <= s.start && w.End+FaultHorizon >= s.start && !slices.Contains(gen.Faults, w.Kind) {
					gen.Faults = append(gen.Faults, w.Kind)
				}
			}
			gs.Generations = append(gs.Generations, gen)
		}
		gs.Rebalances = max(0, len(gs.Generations)-1)
		out = append(out, gs)
	}
	return out
}
