package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// File name suffixes, as in Kafka. deletedSuffix marks files of removed segments that readers
// may still hold; Open deletes leftovers of every temporary suffix.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	deletedSuffix   = ".deleted"
	cleanedSuffix   = ".cleaned"
	tmpSuffix       = ".tmp"
)

// segmentName is the 20-digit zero-padded base offset Kafka uses for segment file names.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// segment is one log segment: a .log file of batches plus in-memory sparse indexes that are
// written to .index and .timeindex when the segment rolls, on Flush and on Close.
//
// Fields other than base, file and refs are guarded by Log.mu; file contents below size are
// immutable except through truncation and compaction, which take Log.appendMu too.
type segment struct {
	base    int64
	dir     string
	file    File
	size    int64 // bytes of whole batches visible to readers
	next    int64 // offset after the last batch; base when empty
	offIdx  []offsetEntry
	timeIdx []timeEntry
	maxTs   int64 // largest batch MaxTimestamp; -1 when empty
	maxTsAt int64 // first offset with maxTs
	// bytesSinceIdx counts bytes appended since the last offset index entry.
	bytesSinceIdx int64
	created       time.Time
	// Guarded by Log.appendMu.
	indexDirty  bool // in-memory indexes differ from the files
	indexSynced bool // index files are current and fsynced
	synced      bool // log file fsynced up to size

	// trustedEnd is how much of the file was loaded from disk without a CRC check (a segment
	// below the recovery point, whose index files were trusted); checkedTo is how much of that
	// readers have since checked. Bytes appended by this process were checked on the way in.
	trustedEnd int64
	checkedTo  atomic.Int64

	refs       atomic.Int32 // the log's reference plus one per unreleased ReadResult
	removeOnFD atomic.Bool  // remove the (renamed) files once the last reference is gone
	fs         FS
	logger     *slog.Logger
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base)+suffix)
}

// createSegment creates an empty segment file (truncating any leftover of the same name).
func createSegment(fs FS, dir string, base int64, now time.Time, logger *slog.Logger) (*segment, error) {
	s := &segment{base: base, dir: dir, next: base, maxTs: -1, maxTsAt: base, created: now,
		indexDirty: true, fs: fs, logger: logger}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := fs.Remove(s.path(suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, ioErr("remove", s.path(suf), err)
		}
	}
	f, err := fs.OpenFile(s.path(logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, ioErr("create", s.path(logSuffix), err)
	}
	s.file = f
	s.refs.Store(1)
	return s, nil
}

// openSegmentFile opens an existing segment file; the caller loads or rebuilds its indexes.
func openSegmentFile(fs FS, dir string, base int64, now time.Time, logger *slog.Logger) (*segment, int64, error) {
	s := &segment{base: base, dir: dir, next: base, maxTs: -1, maxTsAt: base, created: now,
		fs: fs, logger: logger, synced: true}
	f, err := fs.OpenFile(s.path(logSuffix), os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, ioErr("open", s.path(logSuffix), err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, ioErr("stat", s.path(logSuffix), err)
	}
	s.file = f
	s.refs.Store(1)
	return s, st.Size(), nil
}

// rel converts an absolute offset to one relative to the segment base.
func (s *segment) rel(off int64) uint32 { return uint32(off - s.base) }

// noteBatch updates the segment's indexes and counters for a batch written at pos.
// Log.mu must be held for writing (or the segment not yet published).
func (s *segment) noteBatch(h batchHeader, pos int64, indexInterval int) {
	if h.MaxTimestamp > s.maxTs {
		s.maxTs, s.maxTsAt = h.MaxTimestamp, h.BaseOffset
	}
	if s.bytesSinceIdx > int64(indexInterval) {
		s.offIdx = append(s.offIdx, offsetEntry{Rel: s.rel(h.BaseOffset), Pos: uint32(pos)})
		if n := len(s.timeIdx); n == 0 || s.maxTs > s.timeIdx[n-1].TS {
			s.timeIdx = append(s.timeIdx, timeEntry{TS: s.maxTs, Rel: s.rel(s.maxTsAt)})
		}
		s.bytesSinceIdx = 0
		s.indexDirty = true
	}
	s.bytesSinceIdx += h.Size()
	s.next = h.LastOffset() + 1
	s.size = pos + h.Size()
}

// resetIndex forgets all index state so the segment can be rescanned from position 0.
func (s *segment) resetIndex() {
	s.offIdx, s.timeIdx = nil, nil
	s.maxTs, s.maxTsAt, s.next, s.size, s.bytesSinceIdx = -1, s.base, s.base, 0, 0
	s.indexDirty, s.indexSynced = true, false
}

// indexFull reports whether either index reached segment.index.bytes, or relative offsets or
// positions would overflow uint32 after appending n more bytes ending at offset last.
func (s *segment) indexFull(maxIndexBytes int, n int64, last int64) bool {
	return (len(s.offIdx)+1)*offsetEntrySize > maxIndexBytes ||
		(len(s.timeIdx)+1)*timeEntrySize > maxIndexBytes ||
		last-s.base > math.MaxUint32 || s.size+n > math.MaxInt32
}

// readHeaderAt reads the batch header at pos; end bounds the readable bytes.
func (s *segment) readHeaderAt(pos, end int64) (batchHeader, error) {
	var b [batchHeaderSize]byte
	if end-pos < batchHeaderSize {
		return batchHeader{}, fmt.Errorf("%w: header at %d beyond %d in %s", ErrCorrupt, pos, end, s.path(logSuffix))
	}
	if _, err := s.file.ReadAt(b[:], pos); err != nil {
		return batchHeader{}, ioErr("read", s.path(logSuffix), err)
	}
	h := parseHeader(b[:])
	if err := h.checkShape(end - pos); err != nil {
		return batchHeader{}, fmt.Errorf("%s at %d: %w", s.path(logSuffix), pos, err)
	}
	return h, nil
}

// findOffset returns the position and header of the first batch at or after pos-hint whose
// last offset is >= off, scanning forward from the index entry at or below off. found is
// false when no batch of the segment (below end) reaches off.
// Log.mu must be held (read) so the index is stable.
func (s *segment) findOffset(off, end int64) (pos int64, h batchHeader, found bool, err error) {
	if off > s.base {
		pos = int64(floorOffset(s.offIdx, s.rel(off)).Pos)
	}
	for pos < end {
		h, err = s.readHeaderAt(pos, end)
		if err != nil {
			return 0, h, false, err
		}
		if h.LastOffset() >= off {
			return pos, h, true, nil
		}
		pos += h.Size()
	}
	return pos, h, false, nil
}

// scanFile reads f from pos to end in large chunks and calls fn for each batch whose shape
// (and, with verify, CRC) is valid and whose base offset is >= minOffset and above the previous
// batch's last offset. It returns the position after the last good batch and why it stopped
// early (an ErrCorrupt or ErrStorage error), or nil when it reached end cleanly.
func scanFile(f File, pos, end, minOffset int64, verify bool, fn func(h batchHeader, pos int64, b []byte) error) (int64, error) {
	buf := make([]byte, 1<<20)
	for pos < end {
		n := int64(len(buf))
		if end-pos < n {
			n = end - pos
		}
		if _, err := f.ReadAt(buf[:n], pos); err != nil && !(errors.Is(err, io.EOF)) {
			return pos, ioErr("read", f.Name(), err)
		}
		chunk := buf[:n]
		p := int64(0)
		for p < n {
			if n-p < batchHeaderSize {
				if pos+p+batchHeaderSize > end {
					return pos + p, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, end-pos-p)
				}
				break
			}
			h := parseHeader(chunk[p:])
			if err := h.checkShape(end - pos - p); err != nil {
				return pos + p, err
			}
			if h.BaseOffset < minOffset {
				return pos + p, fmt.Errorf("%w: base offset %d below %d", ErrCorrupt, h.BaseOffset, minOffset)
			}
			if p+h.Size() > n {
				if h.Size() > int64(len(buf)) {
					buf = make([]byte, h.Size())
				}
				break
			}
			b := chunk[p : p+h.Size()]
			if verify {
				if err := checkCRC(b); err != nil {
					return pos + p, err
				}
			}
			if err := fn(h, pos+p, b); err != nil {
				return pos + p, err
			}
			minOffset = h.LastOffset() + 1
			p += h.Size()
		}
		pos += p
	}
	return pos, nil
}

// rebuild rescans the segment file from the start, verifying every batch and recreating the
// indexes; a torn or corrupt tail is truncated away. It returns the bytes truncated.
func (s *segment) rebuild(fileSize int64, indexInterval int) (int64, error) {
	s.resetIndex()
	s.synced, s.indexSynced = false, false
	valid, scanErr := scanFile(s.file, 0, fileSize, s.base, true, func(h batchHeader, pos int64, _ []byte) error {
		s.noteBatch(h, pos, indexInterval)
		return nil
	})
	if scanErr != nil && errors.Is(scanErr, ErrStorage) {
		return 0, scanErr
	}
	if valid < fileSize {
		s.logger.Warn("storage: truncating corrupt segment tail", "segment", s.path(logSuffix),
			"valid_bytes", valid, "file_bytes", fileSize, "reason", scanErr)
		if err := s.file.Truncate(valid); err != nil {
			return 0, ioErr("truncate", s.path(logSuffix), err)
		}
		s.synced = false
	}
	return fileSize - valid, nil
}

// loadIndexes reads the index files of a segment below the recovery point and walks the few
// batches after the last index entry. It reports false when an index is missing or invalid
// and the segment must be rebuilt instead.
func (s *segment) loadIndexes(fileSize int64, indexInterval int) bool {
	ob, err := readWholeFile(s.fs, s.path(indexSuffix))
	if err != nil {
		return false
	}
	tb, err := readWholeFile(s.fs, s.path(timeIndexSuffix))
	if err != nil {
		return false
	}
	offIdx, err := decodeOffsetIndex(ob, fileSize)
	if err != nil {
		return false
	}
	// Every entry must point at the batch holding its offset, or the index is damaged.
	for _, e := range offIdx {
		h, err := s.readHeaderAt(int64(e.Pos), fileSize)
		if err != nil || h.BaseOffset != s.base+int64(e.Rel) {
			s.logger.Warn("storage: offset index entry does not match the log; rebuilding", "segment", s.path(indexSuffix),
				"relative_offset", e.Rel, "position", e.Pos)
			return false
		}
	}
	timeIdx, err := decodeTimeIndex(tb)
	if err != nil {
		return false
	}
	if err := s.restoreIndexes(offIdx, timeIdx, fileSize, indexInterval); err != nil {
		return false
	}
	s.indexDirty, s.indexSynced = false, true
	s.trustedEnd = fileSize
	return true
}

// restoreIndexes installs index entries known to be right for the bytes below end and walks
// the batches after the last offset index entry to recompute the segment's counters. The
// last offset entry must match the batch at its position.
func (s *segment) restoreIndexes(offIdx []offsetEntry, timeIdx []timeEntry, end int64, indexInterval int) error {
	s.resetIndex()
	var from int64
	var last offsetEntry
	if n := len(offIdx); n > 0 {
		last = offIdx[n-1]
		from = int64(last.Pos)
		offIdx = offIdx[: n-1 : n-1] // noteBatch re-adds it
		s.bytesSinceIdx = int64(indexInterval) + 1
	}
	s.offIdx, s.timeIdx = offIdx, timeIdx
	if n := len(timeIdx); n > 0 {
		s.maxTs, s.maxTsAt = timeIdx[n-1].TS, s.base+int64(timeIdx[n-1].Rel)
	}
	s.size = from
	stop, err := scanFile(s.file, from, end, s.base, false, func(h batchHeader, p int64, _ []byte) error {
		s.noteBatch(h, p, indexInterval)
		return nil
	})
	if err != nil {
		return err
	}
	if stop != end {
		return fmt.Errorf("%w: %s: scan stopped at %d before %d", ErrCorrupt, s.path(logSuffix), stop, end)
	}
	if from > 0 && (len(s.offIdx) == 0 || s.offIdx[len(s.offIdx)-1] != last) {
		return fmt.Errorf("%w: %s: index does not match log", ErrCorrupt, s.path(logSuffix))
	}
	s.size = end
	return nil
}

// sealTimeIndex adds a final time index entry for the segment's largest timestamp, as Kafka
// does when a segment becomes inactive. Log.mu must be held for writing.
func (s *segment) sealTimeIndex() {
	if n := len(s.timeIdx); s.maxTs >= 0 && (n == 0 || s.maxTs > s.timeIdx[n-1].TS) {
		s.timeIdx = append(s.timeIdx, timeEntry{TS: s.maxTs, Rel: s.rel(s.maxTsAt)})
		s.indexDirty = true
	}
}

// writeIndexFiles writes encoded indexes via temporary files and renames; with sync the
// files are fsynced first. Log.appendMu must be held.
func (s *segment) writeIndexFiles(offB, timeB []byte, sync bool) error {
	if err := writeFileAtomicSync(s.fs, s.path(indexSuffix), offB, sync); err != nil {
		return err
	}
	if err := writeFileAtomicSync(s.fs, s.path(timeIndexSuffix), timeB, sync); err != nil {
		return err
	}
	s.indexDirty, s.indexSynced = false, sync
	return nil
}

// truncateTo drops every batch whose last offset is >= off; the batch containing off goes
// whole. Log.mu must be held for writing.
func (s *segment) truncateTo(off int64, indexInterval int) error {
	pos, h, found, err := s.findOffset(off, s.size)
	if err != nil {
		return err
	}
	if !found {
		return nil
	}
	if err := s.file.Truncate(pos); err != nil {
		return ioErr("truncate", s.path(logSuffix), err)
	}
	s.synced = false
	var offIdx []offsetEntry
	for _, e := range s.offIdx {
		if int64(e.Pos) < pos {
			offIdx = append(offIdx, e)
		}
	}
	var timeIdx []timeEntry
	for _, e := range s.timeIdx {
		if s.base+int64(e.Rel) < h.BaseOffset {
			timeIdx = append(timeIdx, e)
		}
	}
	return s.restoreIndexes(offIdx, timeIdx, pos, indexInterval)
}

// release drops one reference; the last one closes the file and, for removed segments,
// deletes its renamed files.
func (s *segment) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	if err := s.file.Close(); err != nil {
		s.logger.Warn("storage: close segment", "segment", s.file.Name(), "err", err)
	}
	if !s.removeOnFD.Load() {
		return
	}
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		name := s.path(suf + deletedSuffix)
		if err := s.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.logger.Warn("storage: remove deleted segment", "file", name, "err", err)
		}
	}
}

// markDeleted renames the segment's files to *.deleted so a new segment may reuse the name,
// and arranges for them to be removed when the last reader releases the segment.
func (s *segment) markDeleted() error {
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := s.fs.Rename(s.path(suf), s.path(suf+deletedSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return ioErr("rename", s.path(suf), err)
		}
	}
	s.removeOnFD.Store(true)
	return nil
}

// readWholeFile returns the contents of a small file (indexes, checkpoints).
func readWholeFile(fs FS, name string) ([]byte, error) {
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// writeFileAtomic writes name via a temporary file, fsync and rename; with syncDir it also
// fsyncs the directory so the rename is durable.
func writeFileAtomic(fs FS, name string, data []byte, syncDir bool) error {
	if err := writeFileAtomicSync(fs, name, data, true); err != nil {
		return err
	}
	if syncDir {
		if err := fs.SyncDir(filepath.Dir(name)); err != nil {
			return ioErr("fsync dir", filepath.Dir(name), err)
		}
	}
	return nil
}

// writeFileAtomicSync writes name via a temporary file and rename, fsyncing the file first
// when sync is set.
func writeFileAtomicSync(fs FS, name string, data []byte, sync bool) error {
	tmp := name + tmpSuffix
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return ioErr("create", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return ioErr("write", tmp, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return ioErr("fsync", tmp, err)
		}
	}
	if err := f.Close(); err != nil {
		return ioErr("close", tmp, err)
	}
	if err := fs.Rename(tmp, name); err != nil {
		return ioErr("rename", tmp, err)
	}
	return nil
}
