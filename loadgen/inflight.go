package loadgen

import (
	"sync"
	"sync/atomic"
)

// cacheLinePad keeps the fields around it on different cache lines: 128 bytes, a line and
// the neighbour that x86 prefetches with it.
type cacheLinePad [128]byte

// inflight counts records handed to a client and records whose outcome came back, and waits
// until the two agree. The sending goroutine writes one count and the client's goroutines
// the other, on separate cache lines; a sync.WaitGroup keeps both in one word, which moves
// between cores on every record.
type inflight struct {
	sent atomic.Int64
	_    cacheLinePad
	done atomic.Int64
	// waiters counts goroutines in wait; an outcome wakes them only then.
	waiters atomic.Int32
	_       cacheLinePad

	mu   sync.Mutex // guards nothing but the wake-up
	cond *sync.Cond
}

// add counts a record handed to the client.
func (f *inflight) add() { f.sent.Add(1) }

// doneOne counts a record's outcome and wakes the waiters when it was the last one.
func (f *inflight) doneOne() {
	n := f.done.Add(1)
	if f.waiters.Load() > 0 && n >= f.sent.Load() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	}
}

// wait blocks until every record added has its outcome. Records added meanwhile count too.
func (f *inflight) wait() {
	f.mu.Lock()
	if f.cond == nil {
		f.cond = sync.NewCond(&f.mu)
	}
	// waiters goes up before the counts are read: an outcome that reads waiters as 0 came
	// before, and its count is seen below.
	f.waiters.Add(1)
	for f.done.Load() < f.sent.Load() {
		f.cond.Wait()
	}
	f.waiters.Add(-1)
	f.mu.Unlock()
}
