package storage

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// Chunk is a byte range of a segment file holding whole batches.
type Chunk struct {
	File     File
	Pos, Len int64
}

// ReadResult is the answer to Read: whole batches as file ranges. The segments it refers to
// stay open until Release.
type ReadResult struct {
	Chunks []Chunk
	// Size is the total bytes of Chunks.
	Size int64
	// FirstOffset is the base offset of the first batch, or -1 when empty.
	FirstOffset int64
	// LogStartOffset and LogEndOffset are the log's bounds when the read was served.
	LogStartOffset, LogEndOffset int64

	segs []*segment
}

// Release lets the log close or delete the segments the result refers to. It is idempotent.
func (r *ReadResult) Release() {
	for _, s := range r.segs {
		s.release()
	}
	r.segs = nil
}

// WriteTo copies the result's bytes to w using ReadAt (the non-sendfile path).
func (r *ReadResult) WriteTo(w io.Writer) (int64, error) {
	var total int64
	buf := make([]byte, min(r.Size, 1<<20))
	for _, c := range r.Chunks {
		for done := int64(0); done < c.Len; {
			n := min(int64(len(buf)), c.Len-done)
			if _, err := c.File.ReadAt(buf[:n], c.Pos+done); err != nil {
				return total, ioErr("read", c.File.Name(), err)
			}
			m, err := w.Write(buf[:n])
			total += int64(m)
			if err != nil {
				return total, fmt.Errorf("storage: write read result: %w", err)
			}
			done += n
		}
	}
	return total, nil
}

// Bytes returns the result's bytes (tests and small reads).
func (r *ReadResult) Bytes() ([]byte, error) {
	b := make([]byte, 0, r.Size)
	w := &sliceWriter{b}
	if _, err := r.WriteTo(w); err != nil {
		return nil, err
	}
	return w.b, nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// segmentView is a reader's snapshot of one segment: the index and size it may use without
// holding Log.mu, with a reference taken.
type segmentView struct {
	s      *segment
	size   int64
	offIdx []offsetEntry
	next   int64
}

// findOffset is segment.findOffset over the snapshot.
func (v segmentView) findOffset(off, end int64) (int64, batchHeader, bool, error) {
	var pos int64
	if off > v.s.base {
		pos = int64(floorOffset(v.offIdx, v.s.rel(off)).Pos)
	}
	var h batchHeader
	for pos < end {
		var err error
		if h, err = v.s.readHeaderAt(pos, end); err != nil {
			return 0, h, false, err
		}
		if h.LastOffset() >= off {
			return pos, h, true, nil
		}
		pos += h.Size()
	}
	return pos, h, false, nil
}

// Read returns whole batches starting with the batch that contains offset (or the first one
// after it when compaction removed it), from a single segment like Kafka, stopping before any
// batch whose base offset is >= maxOffset (the high watermark or last stable offset) and
// after at most maxBytes, except that with minOneBatch the first batch is returned whole even
// when larger (KIP-74). offset == LogEndOffset gives an empty result; an offset outside
// [LogStartOffset, LogEndOffset] gives ErrOffsetOutOfRange. Batches of a segment that was
// loaded without a CRC check (below the recovery point) are checked the first time they are
// read: the result stops before a bad one, or is a *CorruptError when the first batch is bad
// (unless Options.TrustReads). The caller must Release the result.
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64, minOneBatch bool) (*ReadResult, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	res := &ReadResult{FirstOffset: -1, LogStartOffset: l.logStartOffset, LogEndOffset: l.logEndOffset()}
	if offset < res.LogStartOffset || offset > res.LogEndOffset {
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: offset %d not in [%d, %d]", ErrOffsetOutOfRange, offset, res.LogStartOffset, res.LogEndOffset)
	}
	if offset == res.LogEndOffset || offset >= maxOffset {
		l.mu.RUnlock()
		return res, nil
	}
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset }) - 1
	if i < 0 {
		i = 0
	}
	// Skip segments holding nothing at or above offset (emptied or cut short by compaction).
	for i < len(l.segments)-1 && (l.segments[i].size == 0 || l.segments[i].next <= offset) {
		i++
	}
	s := l.segments[i]
	s.refs.Add(1)
	v := segmentView{s: s, size: s.size, offIdx: s.offIdx, next: s.next}
	res.segs = append(res.segs, s)
	l.mu.RUnlock()

	pos, h, found, err := v.findOffset(offset, v.size)
	if err != nil {
		res.Release()
		return nil, err
	}
	if !found || h.BaseOffset >= maxOffset {
		return res, nil
	}
	end, err := l.readEnd(v, pos, maxOffset)
	if err != nil {
		res.Release()
		return nil, err
	}
	if end-pos > int64(maxBytes) {
		if end, err = l.cutAt(v, pos, pos+int64(maxBytes)); err != nil {
			res.Release()
			return nil, err
		}
		if end == pos && minOneBatch {
			end = pos + h.Size()
		}
	}
	if !l.trustReads && pos < v.s.trustedEnd && v.s.checkedTo.Load() < min(end, v.s.trustedEnd) {
		good, err := l.checkRead(v, pos, end, h.BaseOffset)
		if err != nil && good == pos {
			res.Release()
			return nil, err
		}
		end = good
	}
	if end > pos {
		res.Chunks = []Chunk{{File: v.s.file, Pos: pos, Len: end - pos}}
		res.Size = end - pos
		res.FirstOffset = h.BaseOffset
	}
	return res, nil
}

// readEnd returns the position where the first batch with base offset >= maxOffset starts
// in the view, or its size when there is none.
func (l *Log) readEnd(v segmentView, from int64, maxOffset int64) (int64, error) {
	if maxOffset >= v.next {
		return v.size, nil
	}
	// Like Kafka, a batch containing maxOffset is not readable yet either.
	pos, _, found, err := v.findOffset(maxOffset, v.size)
	if err != nil || !found {
		return v.size, err
	}
	return max(pos, from), nil
}

// cutAt returns the last batch boundary in [from, limit], walking headers from the closest
// index entry so a large read costs few header reads.
func (l *Log) cutAt(v segmentView, from, limit int64) (int64, error) {
	pos := from
	if limit < 1<<32 {
		if e := floorPos(v.offIdx, uint32(limit)); int64(e.Pos) > from {
			pos = int64(e.Pos)
		}
	}
	for pos < limit {
		h, err := v.s.readHeaderAt(pos, v.size)
		if err != nil {
			return 0, err
		}
		if pos+h.Size() > limit {
			break
		}
		pos += h.Size()
	}
	return pos, nil
}

// CorruptError is returned by Read for a stored batch whose CRC32C (or shape) is wrong: the
// log must not serve it. Offset is the batch's base offset, where the good data ends.
type CorruptError struct {
	Dir    string
	Offset int64
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("storage: %s: stored batch at offset %d is corrupt: %v", e.Dir, e.Offset, e.Err)
}

// Unwrap returns ErrCorrupt's chain.
func (e *CorruptError) Unwrap() error { return e.Err }

// checkRead checks the CRC32C of the batches in [pos, end) of a segment that was loaded
// without a check, the first time a reader asks for them, and returns where the good batches
// end. When the first batch (at offset first) is bad it returns pos and a *CorruptError.
// Checked bytes at the start of the segment are remembered, so each is checked once.
func (l *Log) checkRead(v segmentView, pos, end, first int64) (int64, error) {
	stop := min(end, v.s.trustedEnd)
	next := first
	good, err := scanFile(v.s.file, pos, stop, v.s.base, true, func(h batchHeader, _ int64, _ []byte) error {
		next = h.LastOffset() + 1
		return nil
	})
	if errors.Is(err, ErrStorage) {
		return pos, err
	}
	if pos <= v.s.checkedTo.Load() {
		for {
			cur := v.s.checkedTo.Load()
			if cur >= good || v.s.checkedTo.CompareAndSwap(cur, good) {
				break
			}
		}
	}
	if err != nil {
		l.logger.Error("storage: corrupt batch found on read; not serving it", "segment", v.s.path(logSuffix), "position", good, "offset", next, "err", err)
		if good == pos {
			return pos, &CorruptError{Dir: l.dir, Offset: next, Err: err}
		}
		return good, nil
	}
	if good == stop && stop < end {
		good = end
	}
	return good, nil
}
