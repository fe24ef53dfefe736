package storage

import (
	"encoding/binary"
	"sort"
)

// attrDeleteHorizon marks a batch whose FirstTimestamp holds its delete horizon (KIP-534): the
// time after which the cleaner removes its tombstones or its transaction marker.
const attrDeleteHorizon = 0x40

// txnCleanState follows transactions while a cleaner pass walks the log in offset order, as
// Kafka's CleanedTransactionMetadata does: it says which data batches belong to aborted
// transactions (their records go) and which markers may go because no batch of their
// transaction is left.
type txnCleanState struct {
	aborted          []AbortedTxn          // not yet reached, by FirstOffset
	ongoingAborted   map[int64]*abortedRun // by producer id
	ongoingCommitted map[int64]bool        // producers with a transactional batch seen since their last marker
}

// abortedRun is an aborted transaction the pass has reached; seenBatch says a batch of it is
// still in the log.
type abortedRun struct {
	txn       AbortedTxn
	seenBatch bool
}

func newTxnCleanState(aborted []AbortedTxn) *txnCleanState {
	a := append([]AbortedTxn(nil), aborted...)
	sort.SliceStable(a, func(i, j int) bool { return a[i].FirstOffset < a[j].FirstOffset })
	return &txnCleanState{aborted: a, ongoingAborted: map[int64]*abortedRun{}, ongoingCommitted: map[int64]bool{}}
}

// reach starts every aborted transaction whose first offset is <= offset.
func (s *txnCleanState) reach(offset int64) {
	for len(s.aborted) > 0 && s.aborted[0].FirstOffset <= offset {
		a := s.aborted[0]
		s.aborted = s.aborted[1:]
		if s.ongoingAborted[a.ProducerID] == nil {
			s.ongoingAborted[a.ProducerID] = &abortedRun{txn: a}
		}
	}
}

// onBatch notes a data batch and reports whether it belongs to an aborted transaction.
func (s *txnCleanState) onBatch(h *batchHeader) bool {
	s.reach(h.LastOffset())
	if h.Attributes&attrTransactional == 0 {
		return false
	}
	if run := s.ongoingAborted[h.ProducerID]; run != nil {
		run.seenBatch = true
		return true
	}
	s.ongoingCommitted[h.ProducerID] = true
	return false
}

// onMarker notes a control batch and reports whether it may be discarded: an abort marker
// whose transaction has no batch left, a commit marker with no batch of its transaction seen
// in this pass, or a control batch already emptied.
func (s *txnCleanState) onMarker(h *batchHeader, b []byte) bool {
	s.reach(h.LastOffset())
	if h.NumRecords == 0 {
		return true
	}
	commit, _, err := decodeMarker(b[batchHeaderSize:])
	if err != nil {
		return false
	}
	if commit {
		seen := s.ongoingCommitted[h.ProducerID]
		delete(s.ongoingCommitted, h.ProducerID)
		return !seen
	}
	run := s.ongoingAborted[h.ProducerID]
	delete(s.ongoingAborted, h.ProducerID)
	return run == nil || !run.seenBatch
}

// cleanFilter decides, batch by batch and record by record, what a cleaner pass keeps
// (Kafka's LogCleaner.cleanInto filter). The caller feeds every batch of the cleanable range
// in offset order.
type cleanFilter struct {
	latest map[string]int64 // latest offset of each key in the cleanable range
	txns   *txnCleanState
	// producers are the active producers' last records: their last batch stays (empty if need
	// be) so their sequence and epoch survive the cleaning.
	producers        map[int64]lastRecord
	upperBound       int64 // first uncleanable offset: the batch ending just below it stays
	nowMs            int64
	deleteRetentionM int64 // delete.retention.ms
}

// cleanBatch returns what replaces batch b: b itself, a rebuilt batch, an empty batch keeping
// only the header's producer and offset fields, or nil when it goes.
func (f *cleanFilter) cleanBatch(h batchHeader, b []byte) ([]byte, error) {
	control := h.Attributes&attrControl != 0
	var canDiscard bool
	if control {
		canDiscard = f.txns.onMarker(&h, b)
	} else {
		canDiscard = f.txns.onBatch(&h)
	}
	horizon, hasHorizon := int64(-1), h.Attributes&attrDeleteHorizon != 0
	if hasHorizon {
		horizon = h.FirstTimestamp
	}
	discardRecords := canDiscard
	if control {
		discardRecords = canDiscard && hasHorizon && horizon <= f.nowMs
	}
	retainEmpty := h.ProducerID >= 0 && f.isProducersLast(&h) || h.LastOffset()+1 == f.upperBound
	if discardRecords && !retainEmpty {
		return nil, nil
	}
	var kept []rawRecord
	tombstones := false
	all := true
	err := walkBatchRecords(&h, b, func(r *rawRecord) bool {
		keep := !discardRecords && (control || f.keepRecord(&h, r, hasHorizon, horizon))
		if keep {
			kept = append(kept, *r)
			tombstones = tombstones || r.Tombstone
		}
		all = all && keep
		return true
	})
	if err != nil {
		return nil, err
	}
	switch {
	case len(kept) == 0 && retainEmpty:
		return emptyBatch(b), nil
	case len(kept) == 0:
		return nil, nil
	}
	setHorizon := (tombstones || canDiscard && control) && !hasHorizon
	if all && !setHorizon {
		return b, nil
	}
	if setHorizon {
		horizon = f.nowMs + f.deleteRetentionM
	}
	return rebuildBatch(&h, b, kept, horizon)
}

// keepRecord is Kafka's record test: a keyed record that is its key's latest, and for a
// tombstone, one whose batch's delete horizon has not passed (or is not set yet).
func (f *cleanFilter) keepRecord(h *batchHeader, r *rawRecord, hasHorizon bool, horizon int64) bool {
	if r.Key == nil {
		return false
	}
	latest, ok := f.latest[string(r.Key)]
	if ok && h.BaseOffset+int64(r.OffsetDelta) < latest {
		return false
	}
	return !r.Tombstone || !hasHorizon || f.nowMs < horizon
}

// isProducersLast reports whether the batch is what an active producer's state rests on: the
// batch holding its last data offset, or, when it has none, a marker of its current epoch.
func (f *cleanFilter) isProducersLast(h *batchHeader) bool {
	lr, ok := f.producers[h.ProducerID]
	if !ok {
		return false
	}
	if lr.lastDataOffset >= 0 {
		return h.LastOffset() == lr.lastDataOffset
	}
	return h.Attributes&attrControl != 0 && h.ProducerEpoch == lr.epoch
}

// emptyBatch returns batch b's header with no records, as Kafka writes a batch it keeps only
// for its producer state and offsets: uncompressed, FirstTimestamp -1, no delete horizon, the
// same offsets, producer fields, leader epoch, MaxTimestamp and type bits.
func emptyBatch(b []byte) []byte {
	nb := make([]byte, batchHeaderSize)
	copy(nb, b[:batchHeaderSize])
	attr := binary.BigEndian.Uint16(b[offAttributes:]) &^ (attrCompressionMask | attrDeleteHorizon)
	binary.BigEndian.PutUint16(nb[offAttributes:], attr)
	binary.BigEndian.PutUint32(nb[offBatchLength:], uint32(batchHeaderSize-logOverhead))
	binary.BigEndian.PutUint64(nb[offFirstTimestamp:], ^uint64(0))
	binary.BigEndian.PutUint32(nb[offNumRecords:], 0)
	binary.BigEndian.PutUint32(nb[offCRC:], batchCRC(nb))
	return nb
}

// rebuildBatch returns batch b holding only the kept records, re-compressed with its codec, as
// Kafka's MemoryRecordsBuilder writes it: the base timestamp is the delete horizon when
// horizon >= 0 (attribute bit 6 set) and the first kept record's timestamp otherwise, record
// timestamp deltas are rewritten against it, MaxTimestamp is the largest kept timestamp
// (LogAppendTime batches keep theirs); offsets, producer fields and leader epoch stay.
func rebuildBatch(h *batchHeader, b []byte, kept []rawRecord, horizon int64) ([]byte, error) {
	lat := h.Attributes&attrLogAppendTime != 0
	base := horizon
	if base < 0 {
		base = recordTimestamp(h, &kept[0])
	}
	maxTS := int64(-1)
	var plain []byte
	for i := range kept {
		ts := recordTimestamp(h, &kept[i])
		maxTS = max(maxTS, ts)
		plain = appendRecord(plain, kept[i], ts-base)
	}
	if lat {
		maxTS = h.MaxTimestamp
	}
	codec := int(h.Attributes & attrCompressionMask)
	xerial := codec == codecSnappy && isXerial(b[batchHeaderSize:])
	records, err := compress(codec, plain, xerial)
	if err != nil {
		return nil, err
	}
	nb := make([]byte, batchHeaderSize, batchHeaderSize+len(records))
	copy(nb, b[:batchHeaderSize])
	nb = append(nb, records...)
	attr := binary.BigEndian.Uint16(b[offAttributes:]) &^ attrDeleteHorizon
	if horizon >= 0 {
		attr |= attrDeleteHorizon
	}
	binary.BigEndian.PutUint16(nb[offAttributes:], attr)
	binary.BigEndian.PutUint32(nb[offBatchLength:], uint32(len(nb)-logOverhead))
	binary.BigEndian.PutUint64(nb[offFirstTimestamp:], uint64(base))
	binary.BigEndian.PutUint64(nb[offMaxTimestamp:], uint64(maxTS))
	binary.BigEndian.PutUint32(nb[offNumRecords:], uint32(len(kept)))
	binary.BigEndian.PutUint32(nb[offCRC:], batchCRC(nb))
	return nb, nil
}
