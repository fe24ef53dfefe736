package checker

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// guardTick is how often heapGuard reads the heap while searches run.
const guardTick = 5 * time.Millisecond

// heapGuard holds the Go heap of a porcupine check under its budget while searches run. A
// single search can grow without bound (its cache holds every state it visits), and porcupine
// offers no way to stop it other than its timeout, so each search runs a model whose Step
// fails once the guard has stopped it: porcupine then backtracks to the end at once and
// returns, and the window is unknown. When the heap (live and not yet swept objects) passes
// the budget, the guard collects garbage; if the live heap is still above three quarters of
// the budget, it stops the search that has taken the most steps, waits until that search has
// returned, and looks again. Between two readings a search allocates at most what porcupine
// allocates in guardTick (megabytes).
type heapGuard struct {
	budget uint64
	mu     sync.Mutex // guards searches, running
	// searches are the running searches; running is whether the watching goroutine runs.
	searches map[*guardedSearch]struct{}
	running  bool
}

// guardedSearch is one porcupine search under a heapGuard.
type guardedSearch struct {
	stop  atomic.Bool
	steps atomic.Int64
	// heap is the live heap, in bytes, when the guard stopped the search.
	heap atomic.Uint64
}

func newHeapGuard(budget uint64) *heapGuard {
	return &heapGuard{budget: budget, searches: map[*guardedSearch]struct{}{}}
}

// model returns m with a Step that counts steps and fails for good once s is stopped.
func (s *guardedSearch) model(m porcupine.Model) porcupine.Model {
	step := m.Step
	m.Step = func(state, in, out any) (bool, any) {
		if s.stop.Load() {
			return false, state
		}
		s.steps.Add(1)
		return step(state, in, out)
	}
	return m
}

// start registers a search, starting the watch when it is the first.
func (g *heapGuard) start() *guardedSearch {
	s := &guardedSearch{}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.searches[s] = struct{}{}
	if !g.running {
		g.running = true
		go g.watch()
	}
	return s
}

// done unregisters a search; the watch ends with the last.
func (g *heapGuard) done(s *guardedSearch) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.searches, s)
}

func (g *heapGuard) watch() {
	t := time.NewTicker(guardTick)
	defer t.Stop()
	for range t.C {
		g.mu.Lock()
		if len(g.searches) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		waiting := false // for a stopped search to return and free its states
		for s := range g.searches {
			waiting = waiting || s.stop.Load()
		}
		g.mu.Unlock()
		if waiting || heapBytes() <= g.budget {
			continue
		}
		live, over := g.over()
		if !over {
			continue
		}
		g.mu.Lock()
		var largest *guardedSearch
		for s := range g.searches {
			if largest == nil || s.steps.Load() > largest.steps.Load() {
				largest = s
			}
		}
		if largest != nil {
			largest.heap.Store(live)
			largest.stop.Store(true)
		}
		g.mu.Unlock()
	}
}

// overBefore reports, before a search starts, whether the heap is over the budget as over
// does; it collects garbage only when the heap is past the budget.
func (g *heapGuard) overBefore() (uint64, bool) {
	if h := heapBytes(); h <= g.budget {
		return h, false
	}
	return g.over()
}

// over collects garbage and reports the live heap and whether it lies above three quarters
// of the budget: close enough that the searches, not garbage, fill it.
func (g *heapGuard) over() (uint64, bool) {
	runtime.GC()
	live := heapBytes()
	return live, live > g.budget/4*3
}

// heapBytes reads the bytes of live and not yet swept heap objects, without stopping the
// world.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
