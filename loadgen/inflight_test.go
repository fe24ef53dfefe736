package loadgen

import (
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
