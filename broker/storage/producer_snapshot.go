package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// snapshotSuffix names producer-state snapshots: <offset>.snapshot holds the producer state
// of the log up to (excluding) offset, as Kafka's <offset>.snapshot files do.
const snapshotSuffix = ".snapshot"

// snapshotMagic opens every snapshot file; the version follows it.
const snapshotMagic = "KPS1"

// batchMetaOf extracts the producer fields of a batch; ok is false for batches without a
// producer id and, as in Kafka, for control batches compaction emptied (their transaction is
// gone from the log). For a control batch the marker (commit or abort, coordinator epoch) is
// decoded from its single record; a control batch whose record cannot be decoded is
// ErrCorrupt.
func batchMetaOf(h batchHeader, b []byte) (batchMeta, bool, error) {
	if h.ProducerID < 0 || h.Attributes&attrControl != 0 && h.NumRecords == 0 {
		return batchMeta{}, false, nil
	}
	m := batchMeta{producerID: h.ProducerID, epoch: h.ProducerEpoch, baseSeq: h.BaseSequence,
		lastDelta: h.LastOffsetDelta, firstOffset: h.BaseOffset, lastOffset: h.LastOffset(),
		maxTimestamp: h.MaxTimestamp, transactional: h.Attributes&attrTransactional != 0,
		control: h.Attributes&attrControl != 0}
	if m.control {
		commit, coordEpoch, err := decodeMarker(b[batchHeaderSize:])
		if err != nil {
			return m, false, err
		}
		m.commit, m.coordinatorEpoch = commit, coordEpoch
	}
	return m, true, nil
}

// decodeMarker reads the first record of an uncompressed control batch: key (version int16,
// type int16: 0 abort, 1 commit) and value (version int16, coordinator epoch int32).
func decodeMarker(rec []byte) (commit bool, coordinatorEpoch int32, err error) {
	bad := fmt.Errorf("%w: undecodable transaction marker", ErrCorrupt)
	next := func() (int64, bool) {
		v, n := binary.Varint(rec)
		if n <= 0 {
			return 0, false
		}
		rec = rec[n:]
		return v, true
	}
	if _, ok := next(); !ok || len(rec) < 1 { // record length
		return false, 0, bad
	}
	rec = rec[1:]             // attributes
	if _, ok := next(); !ok { // timestamp delta
		return false, 0, bad
	}
	if _, ok := next(); !ok { // offset delta
		return false, 0, bad
	}
	kl, ok := next()
	if !ok || kl < 4 || int64(len(rec)) < kl {
		return false, 0, bad
	}
	typ := int16(binary.BigEndian.Uint16(rec[2:]))
	rec = rec[kl:]
	vl, ok := next()
	if ok && vl >= 6 && int64(len(rec)) >= vl {
		coordinatorEpoch = int32(binary.BigEndian.Uint32(rec[2:]))
	}
	return typ == 1, coordinatorEpoch, nil
}

// encodeSnapshot serialises the producer state: magic, CRC32C of the rest, producers and
// aborted transactions.
func (s *producerState) encodeSnapshot() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := make([]byte, 0, 64+len(s.producers)*200+len(s.aborted)*24)
	b = append(b, snapshotMagic...)
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.producers)))
	pids := make([]int64, 0, len(s.producers))
	for pid := range s.producers {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	for _, pid := range pids {
		e := s.producers[pid]
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint32(b, uint32(e.coordinatorEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastTimestamp))
		b = binary.BigEndian.AppendUint64(b, uint64(e.txnFirstOffset))
		b = append(b, byte(len(e.batches)))
		for _, pb := range e.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(pb.FirstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(pb.LastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.FirstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.Timestamp))
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.aborted)))
	for _, a := range s.aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	binary.BigEndian.PutUint32(b[len(snapshotMagic):], crc32.Checksum(b[len(snapshotMagic)+4:], castagnoli))
	return b
}

// decodeSnapshot parses what encodeSnapshot wrote.
func decodeSnapshot(data []byte) (*producerState, error) {
	bad := func(what string) error { return fmt.Errorf("%w: producer snapshot %s", ErrCorrupt, what) }
	if len(data) < len(snapshotMagic)+8 || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, bad("header")
	}
	if binary.BigEndian.Uint32(data[len(snapshotMagic):]) != crc32.Checksum(data[len(snapshotMagic)+4:], castagnoli) {
		return nil, bad("checksum")
	}
	r := data[len(snapshotMagic)+4:]
	short := false
	take := func(n int) []byte {
		if len(r) < n {
			short = true
			return make([]byte, n)
		}
		v := r[:n]
		r = r[n:]
		return v
	}
	u64 := func() int64 { return int64(binary.BigEndian.Uint64(take(8))) }
	u32 := func() int32 { return int32(binary.BigEndian.Uint32(take(4))) }
	s := newProducerState()
	n := u32()
	for i := int32(0); i < n && !short; i++ {
		pid := u64()
		e := &producerEntry{epoch: int16(binary.BigEndian.Uint16(take(2))), coordinatorEpoch: u32(),
			lastTimestamp: u64(), txnFirstOffset: u64()}
		nb := int(take(1)[0])
		if nb > producerBatchesKept {
			return nil, bad("batch count")
		}
		for j := 0; j < nb; j++ {
			e.batches = append(e.batches, ProducerBatch{FirstSeq: u32(), LastSeq: u32(),
				FirstOffset: u64(), LastOffset: u64(), Timestamp: u64()})
		}
		s.producers[pid] = e
		if e.txnFirstOffset >= 0 {
			s.ongoing[pid] = e.txnFirstOffset
		}
	}
	na := u32()
	for i := int32(0); i < na && !short; i++ {
		s.aborted = append(s.aborted, AbortedTxn{ProducerID: u64(), FirstOffset: u64(), LastOffset: u64()})
	}
	if short || len(r) != 0 {
		return nil, bad("length")
	}
	return s, nil
}

// snapshotPath is the file of the snapshot at offset.
func (l *Log) snapshotPath(offset int64) string {
	return filepath.Join(l.dir, segmentName(offset)+snapshotSuffix)
}

// snapshotOffsets lists the offsets of the log's snapshot files, ascending.
func (l *Log) snapshotOffsets() ([]int64, error) {
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, ioErr("readdir", l.dir, err)
	}
	var offs []int64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, snapshotSuffix) {
			continue
		}
		off, err := strconv.ParseInt(strings.TrimSuffix(name, snapshotSuffix), 10, 64)
		if err == nil && off >= 0 {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs, nil
}

// writeSnapshot writes the producer state as the snapshot at the log end offset.
// appendMu must be held.
func (l *Log) writeSnapshot() error {
	return writeFileAtomic(l.fs, l.snapshotPath(l.logEndOffset()), l.producers.encodeSnapshot(), true)
}

// removeSnapshots deletes the snapshot files for which drop is true. appendMu must be held.
func (l *Log) removeSnapshots(drop func(off int64) bool) error {
	offs, err := l.snapshotOffsets()
	if err != nil {
		return err
	}
	for _, off := range offs {
		if !drop(off) {
			continue
		}
		if err := l.fs.Remove(l.snapshotPath(off)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return ioErr("remove", l.snapshotPath(off), err)
		}
		l.dirSyncNeeded = true
	}
	return nil
}

// rebuildProducers reloads the producer state: snapshots above the log end offset are
// deleted, the newest readable snapshot at or below it is loaded (none: empty state from the
// log start) and the batches after it are replayed. It runs on open and after truncation.
// appendMu must be held (or the log not yet shared).
func (l *Log) rebuildProducers() error {
	leo := l.logEndOffset()
	if err := l.removeSnapshots(func(off int64) bool { return off > leo }); err != nil {
		return err
	}
	offs, err := l.snapshotOffsets()
	if err != nil {
		return err
	}
	state, from := newProducerState(), int64(0)
	for i := len(offs) - 1; i >= 0; i-- {
		data, err := readWholeFile(l.fs, l.snapshotPath(offs[i]))
		if err == nil {
			var s *producerState
			if s, err = decodeSnapshot(data); err == nil {
				state, from = s, offs[i]
				break
			}
		}
		l.logger.Warn("storage: ignoring unreadable producer snapshot", "offset", offs[i], "err", err)
	}
	l.producers.replaceWith(state)
	return l.replayProducers(from)
}

// replayProducers applies the producer fields of every batch whose last offset is >= from.
// appendMu must be held (or the log not yet shared).
func (l *Log) replayProducers(from int64) error {
	for _, s := range l.segments {
		if s.next <= from || s.size == 0 {
			continue
		}
		_, err := scanFile(s.file, 0, s.size, s.base, false, func(h batchHeader, _ int64, b []byte) error {
			if h.LastOffset() < from {
				return nil
			}
			m, ok, err := batchMetaOf(h, b)
			if err != nil || !ok {
				return err
			}
			l.producers.update(&m)
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: replay producer state of %s: %w", s.path(logSuffix), err)
		}
	}
	return nil
}
