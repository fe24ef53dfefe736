package history

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// blockSize is how many bytes of history one decoding job covers; default 1 MiB.
const blockSize = 1 << 20

// block is a run of whole lines and the number of the line before its first.
type block struct {
	data  []byte
	line  int
	done  chan struct{}
	evs   []Event
	lines int // lines in data
	err   error
}

// Batches decodes the rest of the history on workers goroutines (GOMAXPROCS when workers ≤ 0)
// and calls f, from the calling goroutine, with consecutive batches of events in history order.
// A batch's slice is reused once f returns: f may keep the events it copies out (and every
// string and slice they hold) but not the slice itself. Decoding stops at the first malformed line;
// every event before it is delivered first, then the error names file and line. An error from f
// stops decoding and is returned as is. Batches does not mix with Next on the same Reader.
func (r *Reader) Batches(workers int, f func([]Event) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan *block, workers)
	order := make(chan *block, 2*workers)
	stop := make(chan struct{})
	defer close(stop)
	for range workers {
		go func() {
			d := decoder{alias: r.alias}
			for b := range jobs {
				b.decode(&d, r.name)
				close(b.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(jobs)
		readErr <- r.split(func(b *block) bool {
			select {
			case order <- b:
			case <-stop:
				return false
			}
			select {
			case jobs <- b:
				return true
			case <-stop:
				return false
			}
		})
	}()
	for b := range order {
		<-b.done
		if len(b.evs) > 0 {
			if err := f(b.evs); err != nil {
				return err
			}
		}
		eventPool.Put(b.evs[:0])
		if b.err != nil {
			return b.err
		}
		r.line = b.line + b.lines
	}
	if err := <-readErr; err != nil {
		return err
	}
	return nil
}

// AliasStrings makes Batches hand out events whose strings (values, keys, record values) point
// into the block of input they were decoded from instead of being copied: less allocation and
// garbage collection, but one kept string keeps its whole block (about 1 MiB) alive. Use it
// when events are dropped after use, and strings.Clone the few strings kept. Next always
// copies.
func (r *Reader) AliasStrings() { r.alias = true }

// split reads the underlying reader in blocks of whole lines and hands each to emit, which
// returns false to stop.
func (r *Reader) split(emit func(*block) bool) error {
	src := r.src
	line := r.line
	var carry []byte
	for {
		buf := make([]byte, len(carry), max(blockSize, 2*len(carry)))
		copy(buf, carry)
		n, err := io.ReadAtLeast(src, buf[len(carry):cap(buf)], 1)
		buf = buf[:len(carry)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return fmt.Errorf("history: %s:%d: %w", r.name, line+1, err)
		}
		if eof && len(buf) == 0 {
			return nil
		}
		cut := bytes.LastIndexByte(buf, '\n') + 1
		if eof {
			cut = len(buf)
		}
		if cut == 0 {
			if len(buf) > MaxLineBytes {
				return fmt.Errorf("history: %s:%d: line longer than %d bytes", r.name, line+1, MaxLineBytes)
			}
			carry = buf
			continue
		}
		b := &block{data: buf[:cut], line: line, done: make(chan struct{})}
		b.lines = bytes.Count(b.data, []byte{'\n'})
		if cut == len(buf) && len(buf) > 0 && buf[len(buf)-1] != '\n' {
			b.lines++
		}
		line += b.lines
		if !emit(b) {
			return nil
		}
		carry = buf[cut:]
		if eof {
			return nil
		}
	}
}

// eventPool recycles the event slices of Batches.
var eventPool = sync.Pool{New: func() any { return []Event(nil) }}

// decode parses every line of the block into b.evs, stopping at the first malformed line.
// Lines in the Writer's layout are parsed in place (fastPrefix finds their end); others are cut
// at their newline and go through the general decoder.
func (b *block) decode(d *decoder, name string) {
	data := b.data
	b.evs = eventPool.Get().([]Event)[:0]
	line := b.line
	for len(data) > 0 {
		line++
		b.evs = append(b.evs, Event{})
		e := &b.evs[len(b.evs)-1]
		if n, ok := d.fastPrefix(data, e); ok {
			data = data[min(n+1, len(data)):]
			continue
		}
		*e = Event{}
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i], data[i+1:]
		}
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		if len(l) == 0 {
			b.evs = b.evs[:len(b.evs)-1]
			continue
		}
		if err := d.decodeGeneral(l, e); err != nil { // the fast path refused this line above
			b.evs = b.evs[:len(b.evs)-1]
			b.err = fmt.Errorf("history: %s:%d: %w", name, line, err)
			return
		}
	}
}
