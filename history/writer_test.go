package history

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writer's flusher and a test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// readAll decodes every line of a history.
func readAll(t *testing.T, s string) []Event {
	t.Helper()
	r := NewReader(strings.NewReader(s), "h.jsonl")
	var out []Event
	for {
		var e Event
		err := r.Next(&e)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
}

// TestLanesKeepCausalOrder: senders write invokes through their own lanes and hand each
// operation to a completer goroutine, which writes the completion through another lane, as a
// producer and its client do. The history is dense in index, never goes back in time, and
// every completion comes after its invoke, whether the lanes read the clock or the writers
// read it before the call (Event.Time), as the load generator does.
func TestLanesKeepCausalOrder(t *testing.T) {
	t.Run("lane-reads", func(t *testing.T) { testLanesKeepCausalOrder(t, false) })
	t.Run("caller-reads", func(t *testing.T) { testLanesKeepCausalOrder(t, true) })
}

func testLanesKeepCausalOrder(t *testing.T, readFirst bool) {
	var buf syncBuffer
	w := NewWriter(&buf)
	write := func(l *Lane, e *Event, now int64) error {
		if readFirst {
			e.Time = now
		}
		return l.Write(e)
	}
	const senders, perSender = 4, 20000
	handoff := make(chan string, 1024)
	var completers sync.WaitGroup
	for range 2 {
		completers.Add(1)
		go func() {
			defer completers.Done()
			l := w.NewLane()
			for v := range handoff {
				now := w.Clock(time.Now())
				if err := write(l, &Event{Process: 1, Type: OK, F: FSend, Topic: "t", Value: v}, now); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := w.NewLane()
			for i := range perSender {
				now := w.Clock(time.Now())
				v := fmt.Sprintf("%d-%d", s, i)
				if err := write(l, &Event{Process: s, Type: Invoke, F: FSend, Topic: "t", Partition: -1, Value: v, Offset: -1}, now); err != nil {
					t.Error(err)
					return
				}
				handoff <- v
			}
		}()
	}
	// Events from the shared lane mix in while the others run.
	for i := range 1000 {
		if err := w.Write(&Event{Process: ProcessObserver, Type: Info, F: FMeta, Value: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(handoff)
	completers.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, buf.String())
	if want := 2*senders*perSender + 1000; len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	invoked := map[string]int64{}
	for i, e := range evs {
		if e.Index != int64(i) {
			t.Fatalf("line %d has index %d", i, e.Index)
		}
		if i > 0 && e.Time < evs[i-1].Time {
			t.Fatalf("time goes back at index %d: %d after %d", i, e.Time, evs[i-1].Time)
		}
		switch e.Type {
		case Invoke:
			invoked[e.Value] = e.Index
		case OK:
			if _, ok := invoked[e.Value]; !ok {
				t.Fatalf("completion of %s at index %d before its invoke", e.Value, e.Index)
			}
		}
	}
}

// TestWriterFlush: Flush writes out everything written before it, and Close the rest; writes
// after Close fail.
func TestWriterFlush(t *testing.T) {
	var buf syncBuffer
	w := NewWriter(&buf)
	l := w.NewLane()
	for i := range 10 {
		if err := l.Write(&Event{Process: 1, Type: Invoke, F: FSend, Value: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, buf.String())); n != 10 {
		t.Fatalf("after Flush: %d events written out, want 10", n)
	}
	if err := w.Write(&Event{Process: 2, Type: Info, F: FCrash}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, buf.String())); n != 11 {
		t.Fatalf("after Close: %d events, want 11", n)
	}
	if err := l.Write(&Event{Process: 1, Type: Invoke, F: FSend}); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

// TestWriterGeneratedTimes: a history generated with its own times, ahead of the writer's
// clock, comes out in order with those times, and is written out before Close.
func TestWriterGeneratedTimes(t *testing.T) {
	var buf syncBuffer
	w := NewWriter(&buf)
	const n = 100000
	for i := range n {
		if err := w.Write(&Event{Time: int64(i+1) * 1e9, Process: 1, Type: Invoke, F: FSend}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, buf.String())
	if len(evs) != n {
		t.Fatalf("after Flush: %d events, want %d", len(evs), n)
	}
	for i, e := range evs {
		if e.Time != int64(i+1)*1e9 || e.Index != int64(i) {
			t.Fatalf("event %d: index %d time %d", i, e.Index, e.Time)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

// TestWriterReportsWriteError: once the underlying io.Writer fails, Flush, later writes and
// Close report its error.
func TestWriterReportsWriteError(t *testing.T) {
	w := NewWriter(failWriter{})
	if err := w.Write(&Event{Process: 1, Type: Invoke, F: FSend}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != io.ErrShortWrite {
		t.Fatalf("Flush: %v, want %v", err, io.ErrShortWrite)
	}
	if err := w.Write(&Event{Process: 1, Type: Invoke, F: FSend}); err != io.ErrShortWrite {
		t.Fatalf("Write after a failed write: %v", err)
	}
	if err := w.Close(); err != io.ErrShortWrite {
		t.Fatalf("Close: %v", err)
	}
}

// TestOdometerCounts: the flusher's decimal index counter writes the heads appendHead would,
// across every carry up to 5 digits.
func TestOdometerCounts(t *testing.T) {
	var o odometer
	for i := int64(0); i < 100_001; i++ {
		got := string(o.appendHead(nil, 7*i))
		if want := string(appendHead(nil, i, 7*i)); got != want {
			t.Fatalf("index %d: %s, want %s", i, got, want)
		}
	}
}

// TestStaleTimeAfterFlush: an event whose time was read before a flush and that is written
// after it cannot come out before what the flush wrote, nor at an earlier time.
func TestStaleTimeAfterFlush(t *testing.T) {
	var buf syncBuffer
	w := NewWriter(&buf)
	a, b := w.NewLane(), w.NewLane()
	stale := w.Clock(time.Now())
	for w.Now() <= stale {
	}
	if err := b.Write(&Event{Process: 1, Type: Invoke, F: FSend, Value: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.Write(&Event{Process: 0, Type: Invoke, F: FSend, Value: "a", Time: stale}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, buf.String())
	if len(evs) != 2 || evs[0].Value != "b" || evs[1].Value != "a" {
		t.Fatalf("events %+v, want b then a", evs)
	}
	if evs[1].Time < evs[0].Time || evs[1].Time <= stale {
		t.Fatalf("a at %d (read at %d) after b at %d", evs[1].Time, stale, evs[0].Time)
	}
}
