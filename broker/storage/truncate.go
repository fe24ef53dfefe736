package storage

import (
	"fmt"
	"sort"
)

// TruncateTo drops everything at and above offset (follower truncation, KIP-101/279); the
// batch containing offset goes whole, so LogEndOffset may end up below offset. The epoch
// cache drops epochs starting at or above offset. An offset at or above LogEndOffset leaves
// the records alone but still drops the epochs starting at LogEndOffset, as Kafka does: a
// broker that became leader (assigning its epoch at its log end) and lost leadership before
// appending holds an epoch its new leader never had, and kept, it makes every fetch report
// the same divergence, so the follower never appends again. An offset below LogStartOffset
// empties the log and restarts it there.
func (l *Log) TruncateTo(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return err
	}
	if offset >= l.logEndOffset() {
		l.mu.Lock()
		changed := l.epochs.truncateFromEnd(l.logEndOffset())
		l.mu.Unlock()
		if changed {
			return l.writeEpochs()
		}
		return nil
	}
	if offset < l.logStartOffset {
		return l.truncateFullyLocked(offset)
	}
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset }) - 1
	if i < 0 {
		i = 0
	}
	dead := append([]*segment(nil), l.segments[i+1:]...)
	cfg := l.config()
	l.gen++
	l.mu.Lock()
	l.segments = l.segments[:i+1]
	err := l.segments[i].truncateTo(offset, cfg.IndexIntervalBytes)
	l.epochs.truncateFromEnd(offset)
	l.recoveryPoint = min(l.recoveryPoint, l.logEndOffset())
	l.mu.Unlock()
	if err != nil {
		l.failed = fmt.Errorf("storage: truncate to %d: %w", offset, err)
		return l.failed
	}
	if err := l.dropSegments(dead); err != nil {
		return err
	}
	l.firstDirty = min(l.firstDirty, l.logEndOffset())
	if err := l.writeEpochs(); err != nil {
		return err
	}
	if err := l.rebuildProducers(); err != nil {
		l.failed = err
		return err
	}
	return l.writeCheckpoints()
}

// TruncateFullyAndStartAt deletes every segment and restarts the log empty at offset (a
// follower far behind the leader's log start offset). The epoch cache is cleared.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return err
	}
	return l.truncateFullyLocked(offset)
}

// truncateFullyLocked implements TruncateFullyAndStartAt. appendMu must be held.
func (l *Log) truncateFullyLocked(offset int64) error {
	l.gen++
	dead := append([]*segment(nil), l.segments...)
	for _, s := range dead {
		if err := s.markDeleted(); err != nil {
			return err
		}
	}
	ns, err := createSegment(l.fs, l.dir, offset, l.now(), l.logger)
	if err != nil {
		l.failed = err
		return err
	}
	l.mu.Lock()
	l.segments = []*segment{ns}
	l.logStartOffset, l.recoveryPoint = offset, offset
	l.epochs = epochCache{}
	l.mu.Unlock()
	for _, s := range dead {
		s.release()
	}
	l.dirSyncNeeded = true
	l.firstDirty = -1
	if err := l.writeEpochs(); err != nil {
		return err
	}
	if err := l.removeSnapshots(func(int64) bool { return true }); err != nil {
		return err
	}
	l.producers.replaceWith(newProducerState())
	return l.writeCheckpoints()
}

// IncrementLogStartOffset moves LogStartOffset forward to offset (DeleteRecords) and deletes
// segments that are wholly below it. offset above LogEndOffset is ErrOffsetOutOfRange.
func (l *Log) IncrementLogStartOffset(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return err
	}
	if offset > l.logEndOffset() {
		return fmt.Errorf("%w: log start offset %d above log end offset %d", ErrOffsetOutOfRange, offset, l.logEndOffset())
	}
	if offset <= l.logStartOffset {
		return nil
	}
	k := 0
	for k+1 < len(l.segments) && l.segments[k+1].base <= offset {
		k++
	}
	return l.deletePrefix(k, offset)
}

// deletePrefix removes the first k segments and raises LogStartOffset to at least
// minStart. appendMu must be held.
func (l *Log) deletePrefix(k int, minStart int64) error {
	dead := append([]*segment(nil), l.segments[:k]...)
	l.gen++
	l.mu.Lock()
	l.segments = l.segments[k:]
	l.logStartOffset = max(l.logStartOffset, l.segments[0].base, minStart)
	changed := l.epochs.truncateFromStart(l.logStartOffset)
	l.mu.Unlock()
	if err := l.dropSegments(dead); err != nil {
		return err
	}
	if changed {
		if err := l.writeEpochs(); err != nil {
			return err
		}
	}
	if err := l.pruneSnapshots(); err != nil {
		return err
	}
	l.producers.dropAbortedBefore(l.logStartOffset)
	return l.writeCheckpoints()
}

// pruneSnapshots deletes producer snapshots older than the newest one at or below the log
// start offset (that one stays: replaying from it keeps producers whose batches retention
// removed). appendMu must be held.
func (l *Log) pruneSnapshots() error {
	offs, err := l.snapshotOffsets()
	if err != nil {
		return err
	}
	keep := int64(-1)
	for _, off := range offs {
		if off <= l.logStartOffset {
			keep = off
		}
	}
	return l.removeSnapshots(func(off int64) bool { return off < keep })
}

// dropSegments renames removed segments' files to *.deleted and releases the log's
// reference; files go when the last reader releases. appendMu must be held.
func (l *Log) dropSegments(dead []*segment) error {
	var first error
	for _, s := range dead {
		if err := s.markDeleted(); err != nil && first == nil {
			first = err
		}
		s.release()
	}
	if len(dead) > 0 {
		l.dirSyncNeeded = true
	}
	return first
}
