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
	return v.findRecord(start, func(h *batchHeader) batchStep {
		if h.MaxTimestamp < tsMs || h.LastOffset() < lso {
			return skipBatch
		}
		return searchBatch
	}, func(h *batchHeader, r *rawRecord) bool {
		return recordTimestamp(h, r) >= tsMs && h.BaseOffset+int64(r.OffsetDelta) >= lso
	})
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
	return v.findRecord(at, func(h *batchHeader) batchStep {
		switch {
		case h.MaxTimestamp != maxTs:
			return skipBatch
		case h.Attributes&attrControl != 0:
			return stopSearch
		}
		return searchLastBatch
	}, func(h *batchHeader, r *rawRecord) bool { return recordTimestamp(h, r) == maxTs })
}

// batchStep is what findRecord does with a batch.
type batchStep int

const (
	skipBatch       batchStep = iota
	searchBatch               // look for the record here, then go on
	searchLastBatch           // look for the record here only
	stopSearch                // give up
)

// findRecord walks the view's batches from the one the offset index gives for offset from,
// asks step what to do with each (by its header) and returns the first record match accepts
// in the batches it searches, with its timestamp and batch leader epoch.
func (v segmentView) findRecord(from int64, step func(h *batchHeader) batchStep, match func(h *batchHeader, r *rawRecord) bool) (to TimestampOffset, found bool, err error) {
	var pos int64
	if from > v.s.base {
		pos = int64(floorOffset(v.offIdx, v.s.rel(from)).Pos)
	}
	for pos < v.size {
		h, err := v.s.readHeaderAt(pos, v.size)
		if err != nil {
			return TimestampOffset{}, false, err
		}
		st := step(&h)
		if st == stopSearch {
			return TimestampOffset{}, false, nil
		}
		if st != skipBatch {
			b, err := v.s.readBatchAt(pos, &h)
			if err != nil {
				return TimestampOffset{}, false, err
			}
			err = walkBatchRecords(&h, b, func(r *rawRecord) bool {
				if !match(&h, r) {
					return true
				}
				to = TimestampOffset{Offset: h.BaseOffset + int64(r.OffsetDelta), Timestamp: recordTimestamp(&h, r), LeaderEpoch: max(h.LeaderEpoch, -1)}
				found = true
				return false
			})
			if err != nil || found || st == searchLastBatch {
				return to, found, err
			}
		}
		pos += h.Size()
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
	plain, err := decompress(int(h.Attributes&attrCompressionMask), b[batchHeaderSize:])
	if err != nil {
		return err
	}
	return walkRecords(plain, int(h.NumRecords), fn)
}
