package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// cacheLinePad keeps the fields around it on different cache lines: 128 bytes, a line and
// the neighbour that x86 prefetches with it.
type cacheLinePad [128]byte

// inflight counts records handed to a client and records whose outcome came back, and waits
// until the two agree. The sending goroutine writes one count and the client's goroutines
// the other, on separate cache lines; a sync.WaitGroup keeps both in one word, which moves
// between cores on every record. The sent count is apart from what precedes an inflight in
// its struct too, which the outcome side may read for every record (producerTask's outRec).
type inflight struct {
	_    cacheLinePad
	sent atomic.Int64
	_    cacheLinePad
	done atomic.Int64
	// waiters counts goroutines in wait; an outcome wakes them only then.
	waiters atomic.Int32
	// abandoned, once set, ends wait early (waitFor gave up).
	abandoned atomic.Bool
	// lowWater, while the sender waits for room (waitRoom), is the count of records in
	// flight at or below which an outcome signals room; 0 otherwise.
	lowWater atomic.Int64
	_        cacheLinePad
	// room carries waitRoom's wake-up; made by initRoom before the first send.
	room chan struct{}

	mu   sync.Mutex // guards nothing but the wake-up
	cond *sync.Cond
}

// add counts a record handed to the client.
func (f *inflight) add() { f.sent.Add(1) }

// doneOne counts a record's outcome and wakes the waiters when it was the last one.
func (f *inflight) doneOne() {
	n := f.done.Add(1)
	if lw := f.lowWater.Load(); lw > 0 && f.sent.Load()-n <= lw {
		select {
		case f.room <- struct{}{}:
		default:
		}
	}
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
	for f.done.Load() < f.sent.Load() && !f.abandoned.Load() {
		f.cond.Wait()
	}
	f.waiters.Add(-1)
	f.mu.Unlock()
}

// waitCtx is wait bounded by ctx: it fails when ctx ends first (a Producer's Flush).
func (f *inflight) waitCtx(ctx context.Context) error {
	ch := make(chan struct{})
	go func() { f.wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("loadgen: flush: %w", ctx.Err())
	}
}

// waitFor is wait for at most d and until ctx ends; it reports whether every outcome came
// back. Once it gave up, later waits return at once.
func (f *inflight) waitFor(ctx context.Context, d time.Duration) bool {
	done := make(chan struct{})
	go func() { f.wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return f.done.Load() >= f.sent.Load()
	case <-ctx.Done():
	case <-t.C:
	}
	f.mu.Lock()
	f.abandoned.Store(true)
	if f.cond != nil {
		f.cond.Broadcast()
	}
	f.mu.Unlock()
	<-done
	return false
}

// initRoom prepares waitRoom; call it before the first record is added.
func (f *inflight) initRoom() { f.room = make(chan struct{}, 1) }

// outstanding returns the records added whose outcome has not come back.
func (f *inflight) outstanding() int64 { return f.sent.Load() - f.done.Load() }

// waitRoom blocks the sending goroutine while window or more records are in flight, until
// an eighth of the window is free again (so a full window wakes it once per batch of
// outcomes, not per record), or until timeout or ctx ends. It reports whether there is room.
func (f *inflight) waitRoom(ctx context.Context, window int64, timeout *time.Timer) bool {
	for f.outstanding() >= window {
		lw := window - max(1, window/8)
		f.lowWater.Store(lw)
		// An outcome that came before lowWater was set did not signal: look again.
		if f.outstanding() <= lw {
			f.lowWater.Store(0)
			return true
		}
		select {
		case <-f.room:
			f.lowWater.Store(0)
		case <-ctx.Done():
			f.lowWater.Store(0)
			return false
		case <-timeout.C:
			f.lowWater.Store(0)
			return false
		}
	}
	return true
}
