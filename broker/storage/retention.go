package storage

import "time"

// Maintain does the periodic work Kafka's log manager does: roll a non-empty active segment
// older than segment.ms, delete segments by retention (cleanup.policy delete: log start
// offset, retention.bytes, retention.ms; compact: log start offset only), expire producers,
// flush per flush.ms, checkpoint the recovery point, and compact (cleanup.policy compact).
// highWatermark is the partition's high watermark: as in Kafka, retention deletes only
// segments wholly below it and compaction cleans only below the last stable offset it
// implies. The broker calls Maintain about once a second.
func (l *Log) Maintain(now time.Time, highWatermark int64) error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	if err := l.maintainLocked(now, highWatermark); err != nil {
		return err
	}
	l.appendMu.Lock()
	cfg := l.config()
	l.appendMu.Unlock()
	if cfg.compact() {
		return l.compact(now, highWatermark)
	}
	return nil
}

// maintainLocked runs the non-compaction part of Maintain. maintMu must be held.
func (l *Log) maintainLocked(now time.Time, hw int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return err
	}
	cfg := l.config()
	if s := l.active(); s.size > 0 && now.Sub(s.created) > cfg.SegmentMs {
		if _, err := l.roll(l.logEndOffset()); err != nil {
			return err
		}
	}
	if err := l.deleteOldSegments(hw, l.logStartBreached); err != nil {
		return err
	}
	if cfg.delete() {
		if err := l.deleteOldSegments(hw, l.retentionBytesBreached(cfg)); err != nil {
			return err
		}
		if err := l.deleteOldSegments(hw, l.retentionMsBreached(now, cfg)); err != nil {
			return err
		}
	}
	l.producers.expire(now.UnixMilli(), l.producerExpiration.Milliseconds())
	if cfg.FlushMs > 0 && l.unflushed > 0 && now.Sub(l.lastFlush) >= cfg.FlushMs {
		if err := l.flushLocked(false); err != nil {
			return err
		}
	}
	return l.writeCheckpoints()
}

// deleteOldSegments deletes segments from the oldest on while breached (given the segment's
// index) holds, as Kafka's
// UnifiedLog.deleteOldSegments does: a segment goes only when every offset in it is below
// hw (its successor's base offset, or the log end offset for the active segment, is <= hw),
// and an empty active segment never goes. When every segment goes, a new active segment is
// rolled at the log end offset first. The log start offset moves to the base offset of the
// first segment kept. appendMu must be held.
func (l *Log) deleteOldSegments(hw int64, breached func(i int) bool) error {
	k := 0
	for k < len(l.segments) {
		last := k == len(l.segments)-1
		upper := l.logEndOffset()
		if !last {
			upper = l.segments[k+1].base
		}
		if hw < upper || last && l.segments[k].size == 0 || !breached(k) {
			break
		}
		k++
	}
	if k == 0 {
		return nil
	}
	if k == len(l.segments) {
		if _, err := l.roll(l.logEndOffset()); err != nil {
			return err
		}
	}
	return l.deletePrefix(k, 0)
}

// logStartBreached is Kafka's log-start-offset retention: a segment whose successor starts
// at or below the log start offset holds nothing readable. appendMu must be held.
func (l *Log) logStartBreached(i int) bool {
	return i+1 < len(l.segments) && l.segments[i+1].base <= l.logStartOffset
}

// retentionBytesBreached returns retention.bytes' test: while the log is larger than
// retention.bytes, each oldest segment goes if the rest still holds at least retention.bytes.
// appendMu must be held.
func (l *Log) retentionBytesBreached(cfg Config) func(i int) bool {
	var size int64
	for _, s := range l.segments {
		size += s.size
	}
	diff := size - cfg.RetentionBytes
	return func(i int) bool {
		n := l.segments[i].size
		if cfg.RetentionBytes < 0 || diff < n {
			return false
		}
		diff -= n
		return true
	}
}

// retentionMsBreached returns retention.ms' test: the segment's largest timestamp is older
// than retention.ms. appendMu must be held.
func (l *Log) retentionMsBreached(now time.Time, cfg Config) func(i int) bool {
	nowMs := now.UnixMilli()
	return func(i int) bool {
		return cfg.RetentionMs >= 0 && nowMs-l.segments[i].maxTs > cfg.RetentionMs.Milliseconds()
	}
}
