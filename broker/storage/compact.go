package storage

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// compact runs one log-cleaner pass (cleanup.policy=compact) when the cleanable range holds
// data not yet cleaned. As in Kafka, the cleanable range is every segment below the one
// holding the first uncleanable offset: the smaller of the last stable offset (so never at or
// above the high watermark, nor an open transaction) and the active segment's base. A pass
// maps each key to its latest offset in that range (records of aborted transactions do not
// count), then rewrites each segment keeping what Kafka's cleaner keeps (cleanFilter): each
// key's latest record, tombstones until delete.retention.ms after the pass that first kept
// them (the delete horizon, KIP-534), transaction markers while a batch of their transaction
// remains and then until their delete horizon, no records of aborted transactions and none
// without a key, and the last batch of every active producer (emptied if need be) so
// idempotence and fencing survive. Offsets are kept (gaps appear). Appends continue meanwhile;
// a truncation or retention during the pass discards its result. maintMu must be held.
//
// Differences from Kafka's cleaner: segments are cleaned one to one (never merged into
// groups), the offset map covers the whole cleanable range rather than only its dirty part
// (the outcome is the same), and a pass runs whenever the range holds uncleaned data (no
// min.cleanable.dirty.ratio or compaction lags).
func (l *Log) compact(now time.Time, hw int64) error {
	l.appendMu.Lock()
	if err := l.checkOpen(); err != nil {
		l.appendMu.Unlock()
		return err
	}
	cfg, gen := l.config(), l.gen
	uncleanable := min(l.producers.firstUnstableOffset(hw), l.active().base)
	n := 0
	for n < len(l.segments)-1 && l.segments[n+1].base <= uncleanable {
		n++
	}
	upper := l.segments[n].base
	segs := append([]*segment(nil), l.segments[:n]...)
	views := make([]segmentView, len(segs))
	for i, s := range segs {
		s.refs.Add(1)
		views[i] = segmentView{s: s, size: s.size, offIdx: s.offIdx, next: s.next}
	}
	dirty := l.firstDirty < upper
	start := l.logStartOffset
	aborted := l.producers.abortedBetween(start, upper)
	producers := l.producers.lastRecords()
	l.appendMu.Unlock()
	defer func() {
		for _, s := range segs {
			s.release()
		}
	}()
	if len(segs) == 0 || !dirty {
		return nil
	}
	latest, err := buildOffsetMap(views, aborted)
	if err != nil {
		return err
	}
	f := &cleanFilter{latest: latest, txns: newTxnCleanState(aborted), producers: producers, upperBound: upper,
		nowMs: now.UnixMilli(), deleteRetentionM: cfg.DeleteRetentionMs.Milliseconds()}
	for _, v := range views {
		if err := l.cleanSegment(v, f, gen, cfg.IndexIntervalBytes); err != nil {
			return err
		}
	}
	l.appendMu.Lock()
	if l.gen == gen {
		l.firstDirty = upper
	}
	l.appendMu.Unlock()
	return nil
}

// buildOffsetMap maps every key in the views to the offset of its latest record, leaving out
// control batches and batches of aborted transactions.
func buildOffsetMap(views []segmentView, aborted []AbortedTxn) (map[string]int64, error) {
	latest := make(map[string]int64)
	txns := newTxnCleanState(aborted)
	for _, v := range views {
		_, err := scanFile(v.s.file, 0, v.size, v.s.base, false, func(h batchHeader, _ int64, b []byte) error {
			if h.Attributes&attrControl != 0 {
				txns.onMarker(&h, b)
				return nil
			}
			if txns.onBatch(&h) {
				return nil
			}
			return walkBatchRecords(&h, b, func(r *rawRecord) bool {
				if r.Key != nil {
					latest[string(r.Key)] = h.BaseOffset + int64(r.OffsetDelta)
				}
				return true
			})
		})
		if err != nil {
			return nil, err
		}
	}
	return latest, nil
}

// cleanSegment rewrites one segment through the filter and swaps it in when anything
// changed. maintMu must be held.
func (l *Log) cleanSegment(v segmentView, f *cleanFilter, gen uint64, ival int) error {
	var out []byte
	changed := false
	_, err := scanFile(v.s.file, 0, v.size, v.s.base, false, func(h batchHeader, _ int64, b []byte) error {
		nb, err := f.cleanBatch(h, b)
		if err != nil {
			return err
		}
		changed = changed || len(nb) != len(b) || len(nb) > 0 && &nb[0] != &b[0]
		out = append(out, nb...)
		return nil
	})
	if err != nil || !changed {
		return err
	}
	return l.swapSegment(v.s, out, gen, ival)
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
