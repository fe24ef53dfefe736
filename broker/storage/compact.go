package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
)

// compact runs one log-cleaner pass (cleanup.policy=compact) when inactive segments hold data
// not yet cleaned: it keeps the latest record of each key among the inactive segments, drops
// tombstones whose batch is older than delete.retention.ms, keeps offsets (gaps appear) and
// rewrites each changed segment in place of the old one. Appends continue meanwhile; a
// truncation or retention during the pass discards its result. maintMu must be held.
//
// Differences from Kafka's cleaner: segments are cleaned one to one (never merged), the
// offset map covers every inactive segment rather than only the dirty section, there is no
// min.cleanable.dirty.ratio or min.compaction.lag.ms, control batches and records without a
// key are kept, and batches that become empty are dropped.
func (l *Log) compact(now time.Time) error {
	l.appendMu.Lock()
	if err := l.checkOpen(); err != nil {
		l.appendMu.Unlock()
		return err
	}
	cfg, gen := l.config(), l.gen
	segs := append([]*segment(nil), l.segments[:len(l.segments)-1]...)
	views := make([]segmentView, len(segs))
	for i, s := range segs {
		s.refs.Add(1)
		views[i] = segmentView{s: s, size: s.size, offIdx: s.offIdx, next: s.next}
	}
	activeBase := l.active().base
	dirty := l.firstDirty < 0 || l.firstDirty < activeBase
	l.appendMu.Unlock()
	defer func() {
		for _, s := range segs {
			s.release()
		}
	}()
	if len(segs) == 0 || !dirty {
		return nil
	}
	latest := make(map[string]int64)
	for _, v := range views {
		err := forEachRecord(v, func(_ batchHeader, r rawRecord, off int64) {
			if r.Key != nil {
				latest[string(r.Key)] = off
			}
		})
		if err != nil {
			return err
		}
	}
	horizon := now.Add(-cfg.DeleteRetentionMs).UnixMilli()
	for _, v := range views {
		if err := l.cleanSegment(v, latest, horizon, gen, cfg.IndexIntervalBytes); err != nil {
			return err
		}
	}
	l.appendMu.Lock()
	if l.gen == gen {
		l.firstDirty = activeBase
	}
	l.appendMu.Unlock()
	return nil
}

// forEachRecord calls fn for every record of every non-control batch in the view.
func forEachRecord(v segmentView, fn func(h batchHeader, r rawRecord, off int64)) error {
	_, err := scanFile(v.s.file, 0, v.size, v.s.base, false, func(h batchHeader, _ int64, b []byte) error {
		if h.Attributes&attrControl != 0 {
			return nil
		}
		recs, _, err := batchRecords(h, b)
		if err != nil {
			return err
		}
		for _, r := range recs {
			fn(h, r, h.BaseOffset+int64(r.OffsetDelta))
		}
		return nil
	})
	return err
}

// batchRecords decodes the records of a batch.
func batchRecords(h batchHeader, b []byte) ([]rawRecord, bool, error) {
	plain, xerial, err := decompress(int(h.Attributes&attrCompressionMask), b[batchHeaderSize:])
	if err != nil {
		return nil, false, err
	}
	recs, err := parseRecords(plain, int(h.NumRecords))
	return recs, xerial, err
}

// cleanSegment rewrites one segment without the records compaction removes and swaps it in.
// maintMu must be held.
func (l *Log) cleanSegment(v segmentView, latest map[string]int64, horizon int64, gen uint64, ival int) error {
	var out []byte
	changed := false
	_, err := scanFile(v.s.file, 0, v.size, v.s.base, false, func(h batchHeader, _ int64, b []byte) error {
		if h.Attributes&attrControl != 0 {
			out = append(out, b...)
			return nil
		}
		recs, xerial, err := batchRecords(h, b)
		if err != nil {
			return err
		}
		var kept []rawRecord
		for _, r := range recs {
			off := h.BaseOffset + int64(r.OffsetDelta)
			if r.Key != nil && (latest[string(r.Key)] != off || (r.Tombstone && h.MaxTimestamp < horizon)) {
				continue
			}
			kept = append(kept, r)
		}
		switch {
		case len(kept) == len(recs):
			out = append(out, b...)
		case len(kept) == 0:
			changed = true
		default:
			changed = true
			nb, err := rebuildBatch(b, kept, xerial)
			if err != nil {
				return err
			}
			out = append(out, nb...)
		}
		return nil
	})
	if err != nil || !changed {
		return err
	}
	return l.swapSegment(v.s, out, gen, ival)
}

// rebuildBatch returns a copy of batch b holding only kept records, re-compressed with the
// batch's codec. Base offset, last offset delta, timestamps and producer fields stay.
func rebuildBatch(b []byte, kept []rawRecord, xerial bool) ([]byte, error) {
	var plain []byte
	for _, r := range kept {
		plain = append(plain, r.Raw...)
	}
	codec := int(binary.BigEndian.Uint16(b[offAttributes:]) & attrCompressionMask)
	records, err := compress(codec, plain, xerial)
	if err != nil {
		return nil, err
	}
	nb := make([]byte, batchHeaderSize, batchHeaderSize+len(records))
	copy(nb, b[:batchHeaderSize])
	nb = append(nb, records...)
	binary.BigEndian.PutUint32(nb[offBatchLength:], uint32(len(nb)-logOverhead))
	binary.BigEndian.PutUint32(nb[offNumRecords:], uint32(len(kept)))
	binary.BigEndian.PutUint32(nb[offCRC:], batchCRC(nb))
	return nb, nil
}

// swapSegment replaces old by a segment holding data: the new file is written and fsynced
// as *.cleaned, the old indexes are removed, and the file renamed over the old one, so a crash
// leaves either segment whole (a missing index is rebuilt on Open). Readers holding the old
// segment keep reading its open file. maintMu must be held.
func (l *Log) swapSegment(old *segment, data []byte, gen uint64, ival int) error {
	cleaned := old.path(logSuffix + cleanedSuffix)
	f, err := l.fs.OpenFile(cleaned, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return ioErr("create", cleaned, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		l.fs.Remove(cleaned)
		return ioErr("write", cleaned, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		l.fs.Remove(cleaned)
		return ioErr("fsync", cleaned, err)
	}
	ns := &segment{base: old.base, dir: old.dir, file: f, next: old.base, maxTs: -1, maxTsAt: old.base,
		created: old.created, fs: l.fs, logger: l.logger, synced: true}
	ns.refs.Store(1)
	if _, err := scanFile(f, 0, int64(len(data)), ns.base, true, func(h batchHeader, p int64, _ []byte) error {
		ns.noteBatch(h, p, ival)
		return nil
	}); err != nil {
		ns.release()
		l.fs.Remove(cleaned)
		return fmt.Errorf("storage: verify cleaned segment: %w", err)
	}

	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	idx := -1
	for i, s := range l.segments[:len(l.segments)-1] {
		if s == old {
			idx = i
		}
	}
	if l.gen != gen || idx < 0 || l.closed {
		ns.release()
		l.fs.Remove(cleaned)
		return nil
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := l.fs.Remove(old.path(suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
			ns.release()
			return ioErr("remove", old.path(suf), err)
		}
	}
	if err := l.fs.Rename(cleaned, old.path(logSuffix)); err != nil {
		ns.release()
		return ioErr("rename", cleaned, err)
	}
	l.mu.Lock()
	ns.sealTimeIndex()
	l.segments[idx] = ns
	offB, timeB := encodeOffsetIndex(ns.offIdx), encodeTimeIndex(ns.timeIdx)
	l.mu.Unlock()
	old.release()
	l.dirSyncNeeded = true
	return ns.writeIndexFiles(offB, timeB, true)
}
