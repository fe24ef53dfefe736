package storage

// OffsetForTimestamp answers ListOffsets by time: the base offset and MaxTimestamp of the first
// batch whose MaxTimestamp is >= tsMs, found through the segments' largest timestamps and the
// time index. found is false when no batch qualifies (Kafka then answers offset -1).
// Kafka returns the first record inside that batch with a timestamp >= tsMs; this log answers
// at batch granularity, which is the same for LogAppendTime topics and single-record batches.
func (l *Log) OffsetForTimestamp(tsMs int64) (offset int64, timestamp int64, found bool, err error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return -1, -1, false, ErrClosed
	}
	lso := l.logStartOffset
	var v segmentView
	var startRel uint32
	for _, s := range l.segments {
		if s.maxTs >= tsMs {
			v = segmentView{s: s, size: s.size, offIdx: s.offIdx, next: s.next}
			if e, ok := floorTime(s.timeIdx, tsMs); ok {
				startRel = e.Rel
			}
			s.refs.Add(1)
			break
		}
	}
	l.mu.RUnlock()
	if v.s == nil {
		return -1, -1, false, nil
	}
	defer v.s.release()
	pos := int64(floorOffset(v.offIdx, startRel).Pos)
	for pos < v.size {
		h, err := v.s.readHeaderAt(pos, v.size)
		if err != nil {
			return -1, -1, false, err
		}
		if h.MaxTimestamp >= tsMs && h.LastOffset() >= lso {
			return max(h.BaseOffset, lso), h.MaxTimestamp, true, nil
		}
		pos += h.Size()
	}
	return -1, -1, false, nil
}
