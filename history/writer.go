package history

import (
	"errors"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Writer appends events to a history. It is safe for concurrent use. It stamps every event
// with the time from its own monotonic clock (started at NewWriter) and gives it its Index when
// it writes it out, in time order, so index order and time order agree.
//
// Events go through lanes: a lane is a buffer with its own lock, so goroutines writing
// through different lanes do not contend (a producer writes its invokes through one lane and
// its client's completions through another: see NewLane). Write uses the writer's shared lane.
// Under the lane's lock, the lane stamps an event and copies it into its buffer in a compact
// form (see laneEncoder). A background goroutine merges the lanes by time, formats the events
// as JSON lines and writes them out every FlushInterval (default 100ms), when a lane holds
// laneFlushSize (256 KiB), on Flush and on Close, so a crash of the harness loses at most the
// last interval. Events of equal time from different lanes come out in the order the lanes
// were created. Writers wait while a lane holds laneMaxSize (8 MiB) that the underlying
// io.Writer has not taken yet.
type Writer struct {
	start time.Time
	out   io.Writer
	def   *Lane

	mu     sync.Mutex // guards lanes, closed
	lanes  []*Lane
	closed bool
	err    atomic.Pointer[error] // first error of the underlying io.Writer

	flushMu sync.Mutex // serializes flush rounds; guards the fields below
	index   odometer   // index of the next event written out
	last    int64      // time of the last event written out
	outBuf  []byte

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// Lane is one path of events into a Writer; see Writer. It is safe for concurrent use, but
// it is cheapest when mostly one goroutine writes through it.
type Lane struct {
	w *Writer

	mu     sync.Mutex // guards everything below
	buf    []byte     // the events not yet taken by the flusher, in compact form (laneEncoder)
	enc    laneEncoder
	ev     []laneEvent
	last   int64 // time of the last event written through the lane
	closed bool
	room   *sync.Cond // signalled when the flusher takes the lane's events

	// Flusher state, guarded by Writer.flushMu: events taken from the lane but not yet written
	// out (their time was not below the round's watermark).
	held    []byte
	heldEv  []laneEvent
	heldPos int
	dec     laneDecoder
}

// laneEvent locates one event in a lane's buffer: its time and where it ends.
type laneEvent struct {
	t   int64
	end int
}

const (
	// FlushInterval is how often a Writer writes buffered events out; default 100ms.
	FlushInterval = 100 * time.Millisecond
	// laneFlushSize is the lane size at which the flusher is woken early.
	laneFlushSize = 256 << 10
	// laneMaxSize is the lane size at which writers wait for the flusher.
	laneMaxSize = 8 << 20
)

// odometer is a counter kept in decimal, the index of the next event written out: counting
// up a digit at a time is cheaper than formatting the number for every line.
type odometer struct {
	digits []byte // decimal digits, most significant first; empty means 0
}

// appendHead appends the start of a line, `{"i":<index>,"t":<time>`, and counts the index up.
func (o *odometer) appendHead(b []byte, time int64) []byte {
	if len(o.digits) == 0 {
		o.digits = append(o.digits, '0')
	}
	b = append(b, `{"i":`...)
	b = append(b, o.digits...)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, time, 10)
	i := len(o.digits) - 1
	for ; i >= 0 && o.digits[i] == '9'; i-- {
		o.digits[i] = '0'
	}
	if i >= 0 {
		o.digits[i]++
	} else {
		o.digits = append([]byte{'1'}, o.digits...)
	}
	return b
}

// errWriterClosed is returned by Write after Close.
var errWriterClosed = errors.New("history: writer closed")

// NewWriter returns a Writer on w whose clock starts now.
func NewWriter(w io.Writer) *Writer {
	hw := &Writer{
		start: time.Now(),
		out:   w,
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	hw.def = hw.NewLane()
	go hw.flushLoop()
	return hw
}

// NewLane returns a new lane into w. Lanes live as long as the writer.
func (w *Writer) NewLane() *Lane {
	l := &Lane{w: w}
	l.room = sync.NewCond(&l.mu)
	w.mu.Lock()
	l.closed = w.closed
	w.lanes = append(w.lanes, l)
	w.mu.Unlock()
	return l
}

// Now returns the writer's clock: nanoseconds since the run started.
func (w *Writer) Now() int64 { return int64(time.Since(w.start)) }

// Clock converts t, a time read from the monotonic clock (time.Now and times derived from
// it), to the writer's clock without reading the clock again.
func (w *Writer) Clock(t time.Time) int64 { return int64(t.Sub(w.start)) }

// Start returns the wall-clock time the writer's clock started.
func (w *Writer) Start() time.Time { return w.start }

// Write writes e through the writer's shared lane; see Lane.Write.
func (w *Writer) Write(e *Event) error { return w.def.Write(e) }

// Write appends e to the history. The writer stamps it with its clock when e.Time is zero.
// A caller may set e.Time itself: to a reading of the writer's clock taken before the call
// (Writer.Clock), which spares the lane a clock read (tens of nanoseconds on a virtual
// machine), or to write a generated history through one lane. A lane never lets time
// decrease, and neither does the history: an event whose time falls below what a flush
// already wrote out goes out after it, at that time. So the history's order stays
// real-time order: an event whose time was read after another event was written comes
// after it.
// e.Index is set when the event is written out; Write does not keep e. It returns the first
// error of the underlying io.Writer, if any.
func (l *Lane) Write(e *Event) error {
	l.mu.Lock()
	for len(l.buf) >= laneMaxSize && !l.closed {
		l.room.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return errWriterClosed
	}
	before := len(l.buf)
	var err error
	if l.buf, err = l.enc.append(l.buf, e); err != nil {
		l.mu.Unlock() // a nested object that cannot be encoded: nothing is written
		return err
	}
	t := e.Time
	if t == 0 {
		t = l.w.Now()
	}
	t = max(t, l.last)
	l.last = t
	l.ev = append(l.ev, laneEvent{t: t, end: len(l.buf)})
	n := len(l.buf)
	l.mu.Unlock()
	if n >= laneFlushSize && before < laneFlushSize {
		select {
		case l.w.wake <- struct{}{}:
		default:
		}
	}
	return l.w.firstErr()
}

func (w *Writer) firstErr() error {
	if p := w.err.Load(); p != nil {
		return *p
	}
	return nil
}

// flushLoop writes events out every FlushInterval, when woken, and at Close.
func (w *Writer) flushLoop() {
	defer close(w.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.wake:
		case <-t.C:
		case <-w.stop:
			w.flush(math.MaxInt64, 0)
			return
		}
		w.flush(w.Now(), 0)
	}
}

// flush writes out, in time order, every event whose time is below watermark, a reading of
// the clock taken before the call (or above it: see below). Each lane is emptied under its
// lock after the watermark was read, and a lane stamps an event under the same lock, so an
// event written later has a time at or above the watermark: every event below it has been
// taken from its lane, and merging by time gives the history's order. Events at or above the
// watermark are held for the next round. lastSlack (0 or 1) says whether a lane's last event
// counts as below its bound (Flush: everything written so far goes out).
func (w *Writer) flush(watermark int64, lastSlack int64) {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	lanes := w.lanes
	w.mu.Unlock()
	failed := w.firstErr() != nil
	// A lane's own bound: a lane never lets time decrease, so after take its later events
	// are at or above its last time too (which matters for generated times, ahead of the
	// clock). The round's watermark is the lowest bound.
	bound := int64(math.MaxInt64)
	for _, l := range lanes {
		last := l.take()
		bound = min(bound, max(watermark, last+lastSlack))
	}
	watermark = bound
	out := w.outBuf[:0]
	for {
		// The lane whose next held event is earliest; lanes are few, so a scan is cheap.
		var best *Lane
		bt := int64(math.MaxInt64)
		for _, l := range lanes {
			if l.heldPos < len(l.heldEv) && l.heldEv[l.heldPos].t < bt {
				best, bt = l, l.heldEv[l.heldPos].t
			}
		}
		if best == nil || bt >= watermark {
			break
		}
		start := 0
		if best.heldPos > 0 {
			start = best.heldEv[best.heldPos-1].end
		}
		ev := best.heldEv[best.heldPos]
		best.heldPos++
		w.last = max(w.last, ev.t)
		out = best.dec.appendLine(w.index.appendHead(out, w.last), best.held[start:ev.end])
		if len(out) >= laneFlushSize {
			failed = w.writeOut(out, failed)
			out = out[:0]
		}
	}
	if len(out) > 0 {
		failed = w.writeOut(out, failed)
	}
	w.outBuf = out[:0]
	for _, l := range lanes {
		l.compactHeld()
	}
}

// writeOut writes b unless an earlier write failed, and records the first error.
func (w *Writer) writeOut(b []byte, failed bool) bool {
	if failed {
		return true
	}
	if _, err := w.out.Write(b); err != nil {
		w.err.CompareAndSwap(nil, &err)
		return true
	}
	return false
}

// take moves the lane's events to its held part, for the flusher (under Writer.flushMu), and
// returns the time of the last event written through the lane.
func (l *Lane) take() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ev) == 0 {
		return l.last
	}
	if l.heldPos == len(l.heldEv) {
		// Nothing held: swap the buffers instead of copying.
		l.held, l.buf = l.buf, l.held[:0]
		l.heldEv, l.ev = l.ev, l.heldEv[:0]
		l.heldPos = 0
	} else {
		base := len(l.held)
		l.held = append(l.held, l.buf...)
		for _, e := range l.ev {
			l.heldEv = append(l.heldEv, laneEvent{t: e.t, end: base + e.end})
		}
		l.buf, l.ev = l.buf[:0], l.ev[:0]
	}
	l.room.Broadcast()
	return l.last
}

// compactHeld drops the held events already written out (under Writer.flushMu).
func (l *Lane) compactHeld() {
	if l.heldPos == 0 {
		return
	}
	if l.heldPos == len(l.heldEv) {
		l.held, l.heldEv, l.heldPos = l.held[:0], l.heldEv[:0], 0
		return
	}
	cut := l.heldEv[l.heldPos-1].end
	l.held = l.held[:copy(l.held, l.held[cut:])]
	n := copy(l.heldEv, l.heldEv[l.heldPos:])
	l.heldEv = l.heldEv[:n]
	for i := range l.heldEv {
		l.heldEv[i].end -= cut
	}
	l.heldPos = 0
}

// Flush writes out every event written before it was called and returns the first error of
// the underlying io.Writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if !closed {
		// Every event written before this call has a time at most t, and every event stamped
		// once the clock has passed t is above it: those are left for later.
		t := w.Now()
		for w.Now() <= t {
		}
		w.flush(t+1, 1)
	}
	return w.firstErr()
}

// Close writes out everything written and stops the writer; later writes fail. It does not
// close the underlying io.Writer. It returns the first error of the underlying io.Writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	lanes := w.lanes
	w.mu.Unlock()
	for _, l := range lanes {
		l.mu.Lock()
		l.closed = true
		l.room.Broadcast()
		l.mu.Unlock()
	}
	if !already {
		close(w.stop)
	}
	<-w.done
	return w.firstErr()
}
