package loadgen

import (
	"sync"
	"time"

	"github.com/kchaos/kchaos/history"
)

// histQueue hands events from producers, client callbacks and consumers to one goroutine
// that writes them to the history. Senders append to a batch under a mutex (no goroutine
// wake-up per event); the pump swaps the batch out every histPumpInterval or when it holds
// histBatch events. Events are stamped with the history clock under the same mutex, so
// index order and time order agree.
type histQueue struct {
	hw *history.Writer

	mu     sync.Mutex // guards batch, closed
	batch  []*history.Event
	closed bool
	room   *sync.Cond // signalled when the pump takes a batch

	wake chan struct{}
	done chan struct{}
	err  error // first write error; read after done
}

const (
	// histBatch wakes the pump early; histMaxPending makes senders wait for the pump.
	histBatch        = 4096
	histMaxPending   = 1 << 18
	histPumpInterval = 2 * time.Millisecond
)

func newHistQueue(hw *history.Writer) *histQueue {
	q := &histQueue{hw: hw, wake: make(chan struct{}, 1), done: make(chan struct{})}
	q.room = sync.NewCond(&q.mu)
	go q.pump()
	return q
}

// push queues e, stamping its time.
func (q *histQueue) push(e *history.Event) {
	q.mu.Lock()
	for len(q.batch) >= histMaxPending && !q.closed {
		q.room.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		return
	}
	e.Time = q.hw.Now()
	q.batch = append(q.batch, e)
	n := len(q.batch)
	q.mu.Unlock()
	if n == histBatch {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *histQueue) pump() {
	defer close(q.done)
	t := time.NewTicker(histPumpInterval)
	defer t.Stop()
	var spare []*history.Event
	for {
		select {
		case <-t.C:
		case <-q.wake:
		}
		q.mu.Lock()
		batch, closed := q.batch, q.closed
		q.batch = spare[:0]
		q.room.Broadcast()
		q.mu.Unlock()
		for _, e := range batch {
			if _, err := q.hw.Write(e); err != nil && q.err == nil {
				q.err = err
			}
			*e = history.Event{}
			eventPool.Put(e)
		}
		spare = batch
		if closed {
			return
		}
	}
}

// close writes what is queued, stops the pump and returns the first write error.
func (q *histQueue) close() error {
	q.mu.Lock()
	q.closed = true
	q.room.Broadcast()
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.done
	return q.err
}

// eventPool recycles events between their senders and the pump.
var eventPool = sync.Pool{New: func() any { return new(history.Event) }}

// event returns an event from the pool set to v; once written it returns to the pool.
func event(v history.Event) *history.Event {
	e := eventPool.Get().(*history.Event)
	*e = v
	return e
}

// hist queues e for the history, if the run has one.
func (r *runner) hist(e *history.Event) {
	if r.histQ == nil {
		eventPool.Put(e)
		return
	}
	r.histQ.push(e)
}

// startHistory starts the history queue; stopHistory drains and ends it.
func (r *runner) startHistory() {
	if r.hw != nil {
		r.histQ = newHistQueue(r.hw)
	}
}

// stopHistory writes every queued event and returns the first write error. It may be
// called more than once; events sent after it are dropped.
func (r *runner) stopHistory() error {
	if r.histQ == nil {
		return nil
	}
	q := r.histQ
	err := q.close()
	return err
}
