package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Files of a log directory besides segments.
const (
	cleanShutdownFile  = ".kafka_cleanshutdown"
	recoveryPointFile  = "recovery-point-offset-checkpoint"
	logStartOffsetFile = "log-start-offset-checkpoint"
)

// Options are the process-level dependencies of a Log.
type Options struct {
	// FS is the file system; nil means OS.
	FS FS
	// Now is the clock used for segment age, retention and flush.ms; nil means time.Now.
	Now func() time.Time
	// Logger receives recovery and maintenance messages; nil means slog.Default().
	Logger *slog.Logger
	// ProducerIDExpiration is producer.id.expiration.ms: Maintain forgets a producer whose
	// last batch is older than this and that has no open transaction; default 24h.
	ProducerIDExpiration time.Duration
	// TrustReads skips the CRC32C check of batches read for the first time since Open (the
	// kchaos.bug.serve-corrupt switch); default false.
	TrustReads bool
}

// Log is the durable log of one partition: a directory of segments, indexes, the
// leader-epoch cache and checkpoints.
//
// Lock order: maintMu, then appendMu, then mu. appendMu serializes appends and every change
// of structure (roll, truncation, retention, compaction swap, flush); mu guards the state
// readers see. Fields guarded by mu are only written with appendMu held as well, so appendMu
// holders may read them without mu.
type Log struct {
	dir        string
	fs         FS
	now        func() time.Time
	logger     *slog.Logger
	trustReads bool

	maintMu  sync.Mutex
	appendMu sync.Mutex
	mu       sync.RWMutex

	// Guarded by mu.
	cfg            Config
	segments       []*segment // by base offset; the last is the active segment
	logStartOffset int64
	recoveryPoint  int64
	epochs         epochCache
	closed         bool

	// Guarded by appendMu.
	failed          error // set when a failed write could not be undone; appends refuse
	unflushed       int64 // records appended since the last flush
	lastFlush       time.Time
	checkpointedRP  int64
	checkpointedLSO int64
	dirSyncNeeded   bool   // segments were created or renamed since the last directory fsync
	firstDirty      int64  // offset where uncompacted data starts; -1 before the first pass
	gen             uint64 // bumped by truncation and retention so compaction can detect them
	hdrs            []batchHeader
	metas           []batchMeta

	// producers is the producer state (idempotence and transactions); it has its own lock
	// and changes only with appendMu held.
	producers          *producerState
	producerExpiration time.Duration
}

// Open opens (creating if needed) the log in dir and recovers it: after a clean shutdown the
// index files are trusted; otherwise every segment from the one holding the recovery point
// on is rescanned, a torn or corrupt tail is truncated, and its indexes are rebuilt.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if opts.FS == nil {
		opts.FS = OS
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ProducerIDExpiration <= 0 {
		opts.ProducerIDExpiration = 24 * time.Hour
	}
	l := &Log{dir: dir, fs: opts.FS, now: opts.Now, logger: opts.Logger.With("log", dir),
		cfg: cfg.withDefaults(), firstDirty: -1, producers: newProducerState(),
		producerExpiration: opts.ProducerIDExpiration, trustReads: opts.TrustReads}
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, ioErr("mkdir", dir, err)
	}
	if err := l.load(); err != nil {
		for _, s := range l.segments {
			s.release()
		}
		return nil, err
	}
	l.lastFlush = l.now()
	return l, nil
}

// load reads the directory and recovers the segments.
func (l *Log) load() error {
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return ioErr("readdir", l.dir, err)
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix), strings.HasSuffix(name, deletedSuffix), strings.HasSuffix(name, cleanedSuffix):
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				return ioErr("remove", name, err)
			}
		case strings.HasSuffix(name, logSuffix):
			base, ok := segmentBase(name)
			if !ok {
				l.logger.Warn("storage: ignoring unexpected file", "file", name)
				continue
			}
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	clean := false
	if _, err := l.fs.Stat(filepath.Join(l.dir, cleanShutdownFile)); err == nil {
		clean = true
	}
	rp := readOffsetFile(l.fs, filepath.Join(l.dir, recoveryPointFile))
	lso := readOffsetFile(l.fs, filepath.Join(l.dir, logStartOffsetFile))
	l.checkpointedRP, l.checkpointedLSO = rp, lso
	now := l.now()
	ival := l.cfg.IndexIntervalBytes
	var truncatedBytes int64
	for i, base := range bases {
		s, size, err := openSegmentFile(l.fs, l.dir, base, now, l.logger)
		if err != nil {
			return err
		}
		l.segments = append(l.segments, s)
		belowRP := i+1 < len(bases) && bases[i+1] <= rp
		if (clean || belowRP) && s.loadIndexes(size, ival) {
			continue
		}
		cut, err := s.rebuild(size, ival)
		if err != nil {
			return err
		}
		truncatedBytes += cut
		if cut > 0 && i+1 < len(bases) {
			// Everything after a corrupt batch is unreliable, as in Kafka.
			for _, later := range bases[i+1:] {
				dead := &segment{base: later, dir: l.dir, fs: l.fs, logger: l.logger}
				for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
					if err := l.fs.Remove(dead.path(suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
						return ioErr("remove", dead.path(suf), err)
					}
				}
			}
			l.logger.Warn("storage: removed segments after corrupt batch", "count", len(bases)-i-1)
			break
		}
	}
	// Drop empty non-active segments at the tail (a rolled-but-never-written file after a
	// truncation); the last one stays as the active segment.
	for len(l.segments) > 1 && l.segments[len(l.segments)-1].size == 0 &&
		l.segments[len(l.segments)-2].next > l.segments[len(l.segments)-1].base {
		s := l.segments[len(l.segments)-1]
		l.segments = l.segments[:len(l.segments)-1]
		if err := s.markDeleted(); err != nil {
			return err
		}
		s.release()
	}
	if len(l.segments) == 0 {
		s, err := createSegment(l.fs, l.dir, lso, now, l.logger)
		if err != nil {
			return err
		}
		l.segments = []*segment{s}
		l.dirSyncNeeded = true
	}
	l.logStartOffset = max(lso, l.segments[0].base)
	leo := l.logEndOffset()
	if l.logStartOffset > leo {
		l.logStartOffset = leo
	}
	l.recoveryPoint = min(rp, leo)
	if clean {
		l.recoveryPoint = leo
	}
	if data, err := readWholeFile(l.fs, filepath.Join(l.dir, leaderEpochFile)); err == nil {
		c, err := decodeEpochCache(data)
		if err != nil {
			l.logger.Warn("storage: ignoring corrupt leader epoch checkpoint", "err", err)
		}
		l.epochs = c
	}
	c1 := l.epochs.truncateFromEnd(leo)
	c2 := l.epochs.truncateFromStart(l.logStartOffset)
	if c1 || c2 {
		if err := l.writeEpochs(); err != nil {
			return err
		}
	}
	if truncatedBytes > 0 {
		l.logger.Warn("storage: recovered log", "truncated_bytes", truncatedBytes, "log_end_offset", leo)
	}
	if err := l.rebuildProducers(); err != nil {
		return err
	}
	if clean {
		if err := l.fs.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil {
			return ioErr("remove", cleanShutdownFile, err)
		}
		l.dirSyncNeeded = true
	}
	return l.writeCheckpoints()
}

// IsLogDir reports whether dir holds a partition log: a segment file or a recovery-point
// checkpoint. A log opened and killed before its first checkpoint has only segments.
func IsLogDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		name := e.Name()
		if name == recoveryPointFile {
			return true
		}
		if _, ok := segmentBase(name); ok {
			return true
		}
	}
	return false
}

// segmentBase returns the base offset a segment file's name (BASE.log) gives; false when
// name is not one.
func segmentBase(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, logSuffix)
	if !ok {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

// readOffsetFile reads a checkpoint holding one decimal offset; missing or bad means 0.
func readOffsetFile(fs FS, name string) int64 {
	b, err := readWholeFile(fs, name)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// writeCheckpoints persists the recovery point and log start offset when they changed.
// appendMu must be held (or the log not yet shared).
func (l *Log) writeCheckpoints() error {
	if l.recoveryPoint != l.checkpointedRP {
		if err := writeFileAtomic(l.fs, filepath.Join(l.dir, recoveryPointFile),
			[]byte(strconv.FormatInt(l.recoveryPoint, 10)+"\n"), true); err != nil {
			return err
		}
		l.checkpointedRP = l.recoveryPoint
		l.dirSyncNeeded = false
	}
	if l.logStartOffset != l.checkpointedLSO {
		if err := writeFileAtomic(l.fs, filepath.Join(l.dir, logStartOffsetFile),
			[]byte(strconv.FormatInt(l.logStartOffset, 10)+"\n"), true); err != nil {
			return err
		}
		l.checkpointedLSO = l.logStartOffset
		l.dirSyncNeeded = false
	}
	return nil
}

// writeEpochs persists the leader-epoch cache atomically. appendMu must be held.
func (l *Log) writeEpochs() error {
	l.mu.RLock()
	data := l.epochs.encode()
	l.mu.RUnlock()
	return writeFileAtomic(l.fs, filepath.Join(l.dir, leaderEpochFile), data, true)
}

// active returns the active segment. mu or appendMu must be held.
func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// logEndOffset is the offset the next append gets. mu or appendMu must be held.
func (l *Log) logEndOffset() int64 { return l.active().next }

// LogEndOffset returns the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logEndOffset()
}

// LogStartOffset returns the first offset that may still be read.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStartOffset
}

// RecoveryPoint returns the offset below which all data is known to be fsynced.
func (l *Log) RecoveryPoint() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.recoveryPoint
}

// Size returns the bytes of all segment files.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segments {
		n += s.size
	}
	return n
}

// Dir returns the log directory.
func (l *Log) Dir() string { return l.dir }

// SetConfig applies changed topic configs (IncrementalAlterConfigs); they take effect on the
// next append or Maintain.
func (l *Log) SetConfig(cfg Config) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	l.cfg = cfg.withDefaults()
	l.mu.Unlock()
}

// config returns the current config. mu or appendMu must be held.
func (l *Log) config() Config { return l.cfg }

// LatestEpoch returns the latest leader epoch in the epoch cache and whether there is one.
func (l *Log) LatestEpoch() (int32, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.latest()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch (KIP-101/279): the largest epoch <= epoch
// and the start offset of the next larger epoch, or the log end offset for the latest epoch;
// (-1, -1) when epoch is above every known epoch or the cache is empty.
func (l *Log) EndOffsetForEpoch(epoch int32) (foundEpoch int32, endOffset int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffsetFor(epoch, l.logEndOffset())
}

// checkOpen returns ErrClosed after Close or Delete. appendMu must be held.
func (l *Log) checkOpen() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// Close flushes everything, writes the indexes and a clean-shutdown marker, and closes the
// files (segments held by unreleased ReadResults close when those are released).
func (l *Log) Close() error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return nil
	}
	err := l.failed
	if err == nil {
		err = l.flushLocked(true)
	}
	if err == nil {
		err = l.writeSnapshot()
	}
	if err == nil {
		err = writeFileAtomic(l.fs, filepath.Join(l.dir, cleanShutdownFile), nil, true)
	}
	l.mu.Lock()
	l.closed = true
	segs := l.segments
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	if err != nil {
		return fmt.Errorf("storage: close %s: %w", l.dir, err)
	}
	return nil
}

// Delete closes the log without flushing and removes its directory (DeleteTopics).
func (l *Log) Delete() error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	l.closed = true
	segs := l.segments
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return ioErr("readdir", l.dir, err)
	}
	for _, e := range entries {
		if err := l.fs.Remove(filepath.Join(l.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return ioErr("remove", e.Name(), err)
		}
	}
	if err := l.fs.Remove(l.dir); err != nil {
		return ioErr("remove", l.dir, err)
	}
	return nil
}

// AssignEpoch records that leader epoch starts at the current log end offset, as a broker
// does when it becomes a partition's leader (before appending anything in that epoch), so
// OffsetForLeaderEpoch and diverging-epoch checks see the new epoch at once. An epoch not
// newer than the latest one is ignored.
func (l *Log) AssignEpoch(epoch int32) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return err
	}
	l.mu.Lock()
	if e, ok := l.epochs.latest(); ok && e >= epoch {
		l.mu.Unlock()
		return nil
	}
	changed := l.epochs.assign(epoch, l.logEndOffset())
	l.mu.Unlock()
	if !changed {
		return nil
	}
	return l.writeEpochs()
}
