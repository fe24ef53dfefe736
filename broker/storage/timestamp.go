package storage

// TimestampOffset is a record found by a lookup by time (ListOffsets).
type TimestampOffset struct {
	Offset    int64
	Timestamp int64
	// LeaderEpoch is the PartitionLeaderEpoch of the record's batch, -1 when unknown.
	LeaderEpoch int32
}

// recordTimestamp is a record's timestamp: the batch's MaxTimestamp for LogAppendTime batches,
// FirstTimestamp plus the record's delta for CreateTime ones.
func recordTimestamp(h *batchHeader, r *rawRecord) int64 {
	if h.Attributes&attrLogAppendTime != 0 {
		return h.MaxTimestamp
	}
	return h.FirstTimestamp + r.TimestampDelta
}

// OffsetForTimestamp answers ListOffsets for a timestamp >= 0 as Kafka's log does: the first
// record at or above the log start offset whose timestamp is >= tsMs, with its timestamp and
// its batch's leader epoch. The search starts in the first segment whose largest timestamp
// reaches tsMs, at the position the time and offset indexes give, and skips batches whose
// MaxTimestamp is below tsMs; inside a batch (decompressed if needed) every record is
// compared. Like Kafka only that segment is searched. found is false when no record
// qualifies (Kafka then answers offset -1).
func (l *Log) OffsetForTimestamp(tsMs int64) (to TimestampOffset, found bool, err error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return TimestampOffset{}, false, ErrClosed
	}
	lso := l.logStartOffset
	var v segmentView
	start := lso
	for _, s := range l.segments {
		if s.maxTs >= tsMs {
			v = segmentView{s: s, size: s.size, offIdx: s.offIdx, next: s.next}
			if e, ok := floorTime(s.timeIdx, tsMs); ok {
				start = max(start, s.base+int64(e.Rel))
			}
			s.refs.Add(1)
			break
		}
	}
	l.mu.RUnlock()
	if v.s == nil {
		return TimestampOffset{}, false, nil
	}
	defer v.s.release()
	var pos int64
	if start > v.s.base {
		pos = int64(floorOffset(v.offIdx, v.s.rel(start)).Pos)
	}
	for pos < v.size {
		h, err := v.s.readHeaderAt(pos, v.size)
		if err != nil {
			return TimestampOffset{}, false, err
		}
		if h.MaxTimestamp < tsMs || h.LastOffset() < lso {
			pos += h.Size()
			continue
		}
		b, err := v.s.readBatchAt(pos, &h)
		if err != nil {
			return TimestampOffset{}, false, err
		}
		err = walkBatchRecords(&h, b, func(r *rawRecord) bool {
			ts, off := recordTimestamp(&h, r), h.BaseOffset+int64(r.OffsetDelta)
			if ts >= tsMs && off >= lso {
				to = TimestampOffset{Offset: off, Timestamp: ts, LeaderEpoch: max(h.LeaderEpoch, -1)}
				found = true
				return false
			}
			return true
		})
		if err != nil || found {
			return to, found, err
		}
		pos += h.Size()
	}
	return TimestampOffset{}, false, nil
}

// MaxTimestamp answers ListOffsets -3 (KIP-734) as Kafka does: in the first segment holding
// the log's largest batch MaxTimestamp, the first batch with that MaxTimestamp, and in it the
// first record carrying it (the first record of a LogAppendTime batch). found is false for an
// empty log and, as in Kafka, when that batch is a control batch.
func (l *Log) MaxTimestamp() (to TimestampOffset, found bool, err error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return TimestampOffset{}, false, ErrClosed
	}
	best := l.segments[0]
	for _, s := range l.segments[1:] {
		if s.maxTs > best.maxTs {
			best = s
		}
	}
	v := segmentView{s: best, size: best.size, offIdx: best.offIdx, next: best.next}
	maxTs, at := best.maxTs, best.maxTsAt
	best.refs.Add(1)
	l.mu.RUnlock()
	defer v.s.release()
	var pos int64
	if at > v.s.base {
		pos = int64(floorOffset(v.offIdx, v.s.rel(at)).Pos)
	}
	for pos < v.size {
		h, err := v.s.readHeaderAt(pos, v.size)
		if err != nil {
			return TimestampOffset{}, false, err
		}
		if h.MaxTimestamp != maxTs {
			pos += h.Size()
			continue
		}
		if h.Attributes&attrControl != 0 {
			return TimestampOffset{}, false, nil
		}
		b, err := v.s.readBatchAt(pos, &h)
		if err != nil {
			return TimestampOffset{}, false, err
		}
		err = walkBatchRecords(&h, b, func(r *rawRecord) bool {
			if recordTimestamp(&h, r) == maxTs {
				to = TimestampOffset{Offset: h.BaseOffset + int64(r.OffsetDelta), Timestamp: maxTs, LeaderEpoch: max(h.LeaderEpoch, -1)}
				found = true
				return false
			}
			return true
		})
		return to, found, err
	}
	return TimestampOffset{}, false, nil
}

// EarliestOffset answers ListOffsets -2 (and -4 without tiered storage) as Kafka does: the
// log start offset, and the epoch of the leader-epoch cache's first entry when that entry
// starts at or below it (-1 otherwise).
func (l *Log) EarliestOffset() (offset int64, leaderEpoch int32) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.epochs.entries) > 0 && l.epochs.entries[0].StartOffset <= l.logStartOffset {
		return l.logStartOffset, l.epochs.entries[0].Epoch
	}
	return l.logStartOffset, -1
}

// readBatchAt reads the whole batch whose header h was read at pos.
func (s *segment) readBatchAt(pos int64, h *batchHeader) ([]byte, error) {
	b := make([]byte, h.Size())
	if _, err := s.file.ReadAt(b, pos); err != nil {
		return nil, ioErr("read", s.path(logSuffix), err)
	}
	return b, nil
}

// walkBatchRecords calls fn for each record of batch b (decompressed when needed) until fn
// returns false.
func walkBatchRecords(h *batchHeader, b []byte, fn func(r *rawRecord) bool) error {
	plain, _, err := decompress(int(h.Attributes&attrCompressionMask), b[batchHeaderSize:])
	if err != nil {
		return err
	}
	return walkRecords(plain, int(h.NumRecords), fn)
}
