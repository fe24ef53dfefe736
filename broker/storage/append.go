package storage

import "fmt"

// AppendInfo describes one successful append.
type AppendInfo struct {
	FirstOffset, LastOffset int64
	// MaxTimestamp is the largest batch MaxTimestamp appended (after LogAppendTime stamping).
	MaxTimestamp int64
	// LogAppendTime is the stamped broker time in ms, or -1 when batches keep CreateTime.
	LogAppendTime int64
	Batches       int
	Records       int
	Bytes         int
	// Duplicate is set when AppendAsLeader recognised the batch as a retry of one of the
	// producer's last batches: nothing was written and the offsets are the original ones.
	Duplicate bool
}

// AppendAsLeader appends one or more concatenated v2 batches, assigning offsets from
// LogEndOffset by rewriting each BaseOffset in place, stamping PartitionLeaderEpoch =
// leaderEpoch, and when logAppendTimeMs >= 0 setting LogAppendTime (attributes bit 3 and
// MaxTimestamp, CRC32C recomputed). batches is modified in place. The epoch's start offset is
// recorded in the leader-epoch cache if the epoch is new. The broker must have validated
// CRCs; storage only checks the header shape.
//
// Batches with a producer id are checked against the producer state first (see
// producers.go); a failed check returns one of the producer-state errors and writes nothing,
// and a retry of one of the producer's last batches returns the original offsets with
// Duplicate set, writing nothing.
func (l *Log) AppendAsLeader(batches []byte, leaderEpoch int32, logAppendTimeMs int64) (AppendInfo, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return AppendInfo{}, err
	}
	leo := l.logEndOffset()
	info := AppendInfo{FirstOffset: leo, MaxTimestamp: -1, LogAppendTime: -1, Bytes: len(batches)}
	if logAppendTimeMs >= 0 {
		info.LogAppendTime = logAppendTimeMs
	}
	next := leo
	l.hdrs, l.metas = l.hdrs[:0], l.metas[:0]
	err := walkBatches(batches, func(h batchHeader, b []byte) error {
		setBaseOffset(b, next)
		setLeaderEpoch(b, leaderEpoch)
		if logAppendTimeMs >= 0 {
			setLogAppendTime(b, logAppendTimeMs)
			h.MaxTimestamp = logAppendTimeMs
			h.Attributes |= attrLogAppendTime
		}
		h.BaseOffset, h.LeaderEpoch = next, leaderEpoch
		next = h.LastOffset() + 1
		return l.noteAppend(&info, h, b)
	})
	if err != nil {
		return AppendInfo{}, fmt.Errorf("storage: append as leader: %w", err)
	}
	if len(l.hdrs) == 0 {
		return AppendInfo{}, fmt.Errorf("storage: append as leader: %w: no batches", ErrCorrupt)
	}
	if len(l.metas) > 0 {
		dup, err := l.producers.validateAll(l.metas)
		if err != nil {
			return AppendInfo{}, fmt.Errorf("storage: append as leader: producer %d: %w", l.metas[0].producerID, err)
		}
		if dup != nil {
			return AppendInfo{FirstOffset: dup.FirstOffset, LastOffset: dup.LastOffset, MaxTimestamp: dup.Timestamp,
				LogAppendTime: info.LogAppendTime, Duplicate: true}, nil
		}
	}
	info.LastOffset = next - 1
	return info, l.write(batches, &info, leaderEpoch, true)
}

// AppendAsFollower appends batches whose offsets the leader assigned (replication), each with
// its CRC32C checked (ErrCorrupt: nothing is written). The first batch must start at or after
// LogEndOffset (after it only when the leader's log has a
// compaction gap there) and offsets must increase; the epoch cache learns each batch's
// PartitionLeaderEpoch that is newer than its latest epoch.
func (l *Log) AppendAsFollower(batches []byte) (AppendInfo, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkOpen(); err != nil {
		return AppendInfo{}, err
	}
	leo := l.logEndOffset()
	info := AppendInfo{FirstOffset: -1, MaxTimestamp: -1, LogAppendTime: -1, Bytes: len(batches)}
	next := leo
	l.hdrs, l.metas = l.hdrs[:0], l.metas[:0]
	err := walkBatches(batches, func(h batchHeader, b []byte) error {
		if h.BaseOffset < next {
			return fmt.Errorf("%w: batch base offset %d below expected %d", ErrCorrupt, h.BaseOffset, next)
		}
		// As Kafka's follower append (ensureValid): a batch damaged on its way from the
		// leader is refused whole, and the follower fetches it again.
		if err := checkCRC(b); err != nil {
			return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		if info.FirstOffset < 0 {
			info.FirstOffset = h.BaseOffset
		}
		next = h.LastOffset() + 1
		if h.Attributes&attrLogAppendTime != 0 && info.LogAppendTime < 0 {
			info.LogAppendTime = h.MaxTimestamp
		}
		return l.noteAppend(&info, h, b)
	})
	if err != nil {
		return AppendInfo{}, fmt.Errorf("storage: append as follower: %w", err)
	}
	if len(l.hdrs) == 0 {
		return AppendInfo{}, fmt.Errorf("storage: append as follower: %w: no batches", ErrCorrupt)
	}
	info.LastOffset = next - 1
	return info, l.write(batches, &info, -1, false)
}

// noteAppend accumulates one batch into info, the header list and, for batches with a
// producer id, the producer metadata list. appendMu must be held.
func (l *Log) noteAppend(info *AppendInfo, h batchHeader, b []byte) error {
	info.Batches++
	info.Records += int(h.NumRecords)
	info.MaxTimestamp = max(info.MaxTimestamp, h.MaxTimestamp)
	l.hdrs = append(l.hdrs, h)
	m, ok, err := batchMetaOf(h, b)
	if ok {
		l.metas = append(l.metas, m)
	}
	return err
}

// write rolls if needed, writes batches to the active segment with one write call, publishes
// the new batches to readers and updates the epoch cache and flush state. A failed write is
// undone by truncating the file back. appendMu must be held.
func (l *Log) write(batches []byte, info *AppendInfo, leaderEpoch int32, asLeader bool) error {
	cfg := l.config()
	s := l.active()
	n := int64(len(batches))
	if s.size > 0 && (s.size+n > cfg.SegmentBytes || l.now().Sub(s.created) > cfg.SegmentMs ||
		s.indexFull(cfg.SegmentIndexBytes, n, info.LastOffset)) {
		var err error
		if s, err = l.roll(info.FirstOffset); err != nil {
			return err
		}
	}
	pos := s.size
	if _, err := s.file.Write(batches); err != nil {
		if terr := s.file.Truncate(pos); terr != nil {
			l.failed = ioErr("truncate after failed write", s.path(logSuffix), terr)
			l.logger.Error("storage: cannot undo failed write; log refuses appends until reopened", "err", terr)
		}
		return ioErr("write", s.path(logSuffix), err)
	}
	epochChanged := false
	l.mu.Lock()
	for _, h := range l.hdrs {
		s.noteBatch(h, pos, cfg.IndexIntervalBytes)
		pos += h.Size()
		if !asLeader && h.LeaderEpoch >= 0 {
			if e, ok := l.epochs.latest(); !ok || h.LeaderEpoch > e {
				epochChanged = l.epochs.assign(h.LeaderEpoch, h.BaseOffset) || epochChanged
			}
		}
	}
	if asLeader {
		epochChanged = l.epochs.assign(leaderEpoch, info.FirstOffset)
	}
	l.mu.Unlock()
	for i := range l.metas {
		l.producers.update(&l.metas[i])
	}
	s.synced = false
	l.unflushed += int64(info.Records)
	if epochChanged {
		if err := l.writeEpochs(); err != nil {
			return err
		}
	}
	if l.unflushed >= cfg.FlushMessages {
		return l.flushLocked(false)
	}
	return nil
}

// roll closes the active segment for appends and starts a new one at base. Its indexes are
// written now (without fsync; Flush makes them durable), and the producer state is
// snapshotted at base. appendMu must be held.
func (l *Log) roll(base int64) (*segment, error) {
	old := l.active()
	if old.size == 0 {
		return old, nil
	}
	ns, err := createSegment(l.fs, l.dir, base, l.now(), l.logger)
	if err != nil {
		return nil, err
	}
	if err := l.writeSnapshot(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	old.sealTimeIndex()
	offB, timeB := encodeOffsetIndex(old.offIdx), encodeTimeIndex(old.timeIdx)
	l.segments = append(l.segments, ns)
	l.mu.Unlock()
	l.dirSyncNeeded = true
	if err := old.writeIndexFiles(offB, timeB, false); err != nil {
		return nil, err
	}
	return ns, nil
}
