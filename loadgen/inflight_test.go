package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestInflightWaitsForEveryOutcome: records go to two completer goroutines, as a client's
// do; wait, called while records are still being sent and again after the last, returns only
// when every outcome has been handled, and returns at once when nothing is in flight.
func TestInflightWaitsForEveryOutcome(t *testing.T) {
	var f inflight
	f.wait() // nothing in flight
	const n = 200_000
	work := make(chan int, 1024)
	var handled atomic.Int64
	var completers sync.WaitGroup
	for range 2 {
		completers.Add(1)
		go func() {
			defer completers.Done()
			for i := range work {
				if i%50_000 == 0 {
					time.Sleep(5 * time.Millisecond) // a slow outcome
				}
				handled.Add(1)
				f.doneOne()
			}
		}()
	}
	early := make(chan int64)
	for i := range n {
		f.add()
		work <- i
		if i == n/2 {
			go func() { f.wait(); early <- handled.Load() }()
		}
	}
	f.wait()
	if got := handled.Load(); got != n {
		t.Fatalf("wait returned with %d of %d outcomes handled", got, n)
	}
	if got := <-early; got < n/2+1 {
		t.Fatalf("a wait begun after %d sends returned with %d outcomes handled", n/2+1, got)
	}
	close(work)
	completers.Wait()
}

// TestInflightWaitForGivesUp: an outcome that never comes holds waitFor for its bound only
// (or until its context ends), and waits after it return at once; outcomes that all come
// back make it report so.
func TestInflightWaitForGivesUp(t *testing.T) {
	var f inflight
	f.add()
	f.add()
	f.doneOne()
	start := time.Now()
	if f.waitFor(context.Background(), 50*time.Millisecond) {
		t.Fatal("waitFor reported every outcome back with one missing")
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("waitFor gave up after %v, want about 50ms", d)
	}
	f.wait() // returns at once once abandoned

	var g inflight
	g.add()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if g.waitFor(ctx, time.Hour) {
		t.Fatal("waitFor reported every outcome back after its context ended")
	}

	var h inflight
	h.add()
	go func() { time.Sleep(20 * time.Millisecond); h.doneOne() }()
	if !h.waitFor(context.Background(), time.Hour) {
		t.Fatal("waitFor gave up although the outcome came")
	}
}
