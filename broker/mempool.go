package broker

import (
	"context"
	"errors"

	"golang.org/x/sync/semaphore"
)

// memPool bounds the bytes of produce requests read and not yet handled across all of the
// broker's connections: Kafka's queued.max.request.bytes (default -1, unbounded). A connection
// that cannot get room for its next request stops reading it until handled requests free some,
// so the client is slowed by TCP. Only Produce frames draw on the pool: replica fetches and
// controller requests are small, and must never wait behind produce requests that are
// themselves waiting for replication. A nil *memPool is unbounded.
type memPool struct {
	capacity int64
	sem      *semaphore.Weighted
}

// newMemPool returns a pool of capacity bytes, or nil (unbounded) when capacity <= 0.
func newMemPool(capacity int64) *memPool {
	if capacity <= 0 {
		return nil
	}
	return &memPool{capacity: capacity, sem: semaphore.NewWeighted(capacity)}
}

var errBrokerStopping = errors.New("broker: shutting down")

// acquire waits until n bytes are free (a request larger than the whole pool takes the whole
// pool) or stop is closed, and returns how many bytes it took.
func (m *memPool) acquire(n int64, stop <-chan struct{}) (int64, error) {
	if m == nil || n <= 0 {
		return 0, nil
	}
	n = min(n, m.capacity)
	if m.sem.TryAcquire(n) {
		return n, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := m.sem.Acquire(ctx, n); err != nil {
		return 0, errBrokerStopping
	}
	return n, nil
}

// release returns n bytes taken by acquire.
func (m *memPool) release(n int64) {
	if m != nil && n > 0 {
		m.sem.Release(n)
	}
}
