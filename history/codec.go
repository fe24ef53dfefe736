package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// MarshalJSON encodes a Record as [partition, offset, value].
func (r Record) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32+len(r.Value))
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, ',')
	b = strconv.AppendQuote(b, r.Value)
	return append(b, ']'), nil
}

// UnmarshalJSON decodes [partition, offset, value].
func (r *Record) UnmarshalJSON(b []byte) error {
	var a [3]json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("history: record: %w", err)
	}
	if err := json.Unmarshal(a[0], &r.Partition); err != nil {
		return fmt.Errorf("history: record partition: %w", err)
	}
	if err := json.Unmarshal(a[1], &r.Offset); err != nil {
		return fmt.Errorf("history: record offset: %w", err)
	}
	if err := json.Unmarshal(a[2], &r.Value); err != nil {
		return fmt.Errorf("history: record value: %w", err)
	}
	return nil
}

// MarshalJSON encodes a PartitionOffset as [partition, offset].
func (p PartitionOffset) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 24)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(p.Partition), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, p.Offset, 10)
	return append(b, ']'), nil
}

// UnmarshalJSON decodes [partition, offset].
func (p *PartitionOffset) UnmarshalJSON(b []byte) error {
	var a [2]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("history: partition offset: %w", err)
	}
	p.Partition, p.Offset = int32(a[0]), a[1]
	return nil
}

// Writer appends events to a history. It is safe for concurrent use; it assigns Index and Time
// (from its own monotonic clock started at NewWriter) to every event it writes. Output is
// buffered and flushed every FlushInterval (default 100ms) and on Close, so a crash of the
// harness loses at most the last interval.
type Writer struct {
	mu    sync.Mutex // guards everything below
	bw    *bufio.Writer
	buf   []byte // scratch for one encoded event
	next  int64
	start time.Time
	err   error
	stop  chan struct{}
	done  chan struct{}
}

// FlushInterval is how often a Writer flushes buffered events; default 100ms.
const FlushInterval = 100 * time.Millisecond

// NewWriter returns a Writer on w whose clock starts now.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriterSize(w, 256<<10)
	hw := &Writer{bw: bw, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go hw.flushLoop()
	return hw
}

func (w *Writer) flushLoop() {
	defer close(w.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if w.err == nil {
				w.err = w.bw.Flush()
			}
			w.mu.Unlock()
		}
	}
}

// Now returns the writer's clock: nanoseconds since the run started.
func (w *Writer) Now() int64 { return int64(time.Since(w.start)) }

// Start returns the wall-clock time the writer's clock started.
func (w *Writer) Start() time.Time { return w.start }

// Write sets e.Index and, when e.Time is zero, e.Time, then appends e. It returns the index
// given to the event, and the first write error of the writer, if any.
func (w *Writer) Write(e *Event) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return -1, w.err
	}
	e.Index = w.next
	if e.Time == 0 {
		e.Time = w.Now()
	}
	w.next++
	b, err := e.appendJSON(w.buf[:0])
	if err != nil {
		w.err = err
		return e.Index, err
	}
	w.buf = append(b, '\n')
	_, w.err = w.bw.Write(w.buf)
	return e.Index, w.err
}

// Close flushes and stops the writer. It does not close the underlying io.Writer.
func (w *Writer) Close() error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// Reader reads a history one event at a time, without holding it in memory.
type Reader struct {
	sc   *bufio.Scanner
	line int
	name string
}

// MaxLineBytes bounds one history line; default 64 MiB (a poll of many large batches).
const MaxLineBytes = 64 << 20

// NewReader returns a Reader over r; name is used in error messages (a file path).
func NewReader(r io.Reader, name string) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), MaxLineBytes)
	return &Reader{sc: sc, name: name}
}

// Next decodes the next event into e, which it resets first. It returns io.EOF after the last
// event. A torn last line (a crash mid-write) is reported as an error naming file and line.
func (r *Reader) Next(e *Event) error {
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		*e = Event{}
		if err := json.Unmarshal(b, e); err != nil {
			return fmt.Errorf("history: %s:%d: %w", r.name, r.line, err)
		}
		return nil
	}
	if err := r.sc.Err(); err != nil {
		return fmt.Errorf("history: %s:%d: %w", r.name, r.line+1, err)
	}
	return io.EOF
}

// Line returns the line number of the last event returned by Next.
func (r *Reader) Line() int { return r.line }
