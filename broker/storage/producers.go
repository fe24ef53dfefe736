package storage

import (
	"errors"
	"math"
	"sort"
	"sync"
)

// Producer-state errors: AppendAsLeader returns them (wrapped) when a batch of an idempotent
// or transactional producer fails the checks of Kafka's ProducerStateManager. Nothing is
// written then.
var (
	// ErrOutOfOrderSequence is a sequence gap, or a new epoch not starting at sequence 0.
	ErrOutOfOrderSequence = errors.New("storage: out of order sequence number")
	// ErrInvalidProducerEpoch is a batch of an idempotent producer with an older epoch.
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch")
	// ErrProducerFenced is a transactional batch with an older epoch.
	ErrProducerFenced = errors.New("storage: producer fenced")
	// ErrUnknownProducerID is a batch with sequence != 0 from a producer the log has no state
	// for (never seen, or expired by producer.id.expiration.ms).
	ErrUnknownProducerID = errors.New("storage: unknown producer id")
	// ErrInvalidTxnState is a non-transactional batch from a producer with an open transaction.
	ErrInvalidTxnState = errors.New("storage: invalid transaction state")
	// ErrCoordinatorFenced is a transaction marker from an older coordinator epoch.
	ErrCoordinatorFenced = errors.New("storage: transaction coordinator fenced")
)

// producerBatchesKept is how many batches per producer are remembered for duplicate detection
// (Kafka's ProducerStateEntry.NumBatchesToRetain, which equals the client's maximum of 5
// in-flight requests).
const producerBatchesKept = 5

// noProducerEpoch marks an entry that has not seen a batch with an epoch yet.
const noProducerEpoch int16 = -1

// ProducerBatch is what the log remembers of one appended batch of a producer.
type ProducerBatch struct {
	FirstSeq, LastSeq       int32
	FirstOffset, LastOffset int64
	// Timestamp is the batch's MaxTimestamp in ms.
	Timestamp int64
}

// ProducerInfo describes one producer's state in a log (DescribeProducers).
type ProducerInfo struct {
	ProducerID       int64
	ProducerEpoch    int16
	CoordinatorEpoch int32
	// LastSequence is the last sequence appended, -1 when no data batch is known.
	LastSequence int32
	// LastTimestamp is the MaxTimestamp of the producer's last batch (ms).
	LastTimestamp int64
	// CurrentTxnStartOffset is the first offset of the open transaction, -1 when none.
	CurrentTxnStartOffset int64
}

// AbortedTxn is one entry of the aborted-transaction index: a transaction of ProducerID
// that spans FirstOffset through LastOffset (the offset of its abort marker).
type AbortedTxn struct {
	ProducerID              int64
	FirstOffset, LastOffset int64
}

// producerEntry is the state of one producer in one log.
type producerEntry struct {
	epoch            int16
	coordinatorEpoch int32
	lastTimestamp    int64
	txnFirstOffset   int64 // -1 when no transaction is open
	batches          []ProducerBatch
}

func (e *producerEntry) clone() *producerEntry {
	c := *e
	c.batches = append([]ProducerBatch(nil), e.batches...)
	return &c
}

// lastSeq returns the last sequence appended, -1 when none.
func (e *producerEntry) lastSeq() int32 {
	if len(e.batches) == 0 {
		return -1
	}
	return e.batches[len(e.batches)-1].LastSeq
}

// batchMeta is the part of a batch header the producer state uses.
type batchMeta struct {
	producerID       int64
	epoch            int16
	baseSeq          int32
	lastDelta        int32
	firstOffset      int64
	lastOffset       int64
	maxTimestamp     int64
	transactional    bool
	control          bool
	commit           bool  // control: a commit marker (else abort)
	coordinatorEpoch int32 // control: from the marker's value
}

// lastSeq is the batch's last sequence, wrapping at MaxInt32 to 0 as Kafka's producers do.
func (m *batchMeta) lastSeq() int32 {
	if m.baseSeq > math.MaxInt32-m.lastDelta {
		return m.lastDelta - (math.MaxInt32 - m.baseSeq) - 1
	}
	return m.baseSeq + m.lastDelta
}

// inSequence reports whether next directly follows last (with the wrap at MaxInt32).
func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// txnRange is a completed transaction whose marker the high watermark may not cover yet.
type txnRange struct{ first, last int64 }

// producerState is a log's producer state (Kafka's ProducerStateManager): per producer id the
// epoch and last batches, open transactions, and the aborted-transaction index. Its own mutex
// is a leaf lock; mutations additionally happen only with Log.appendMu held, so a check and
// the append it allows are atomic.
type producerState struct {
	mu        sync.Mutex
	producers map[int64]*producerEntry
	// ongoing maps producer ids with an open transaction to its first offset.
	ongoing map[int64]int64
	// unreplicated are completed transactions not yet known to be below the high watermark:
	// they hold back the last stable offset until their marker is committed.
	unreplicated []txnRange
	// aborted is the aborted-transaction index, in marker (LastOffset) order.
	aborted []AbortedTxn
}

func newProducerState() *producerState {
	return &producerState{producers: map[int64]*producerEntry{}, ongoing: map[int64]int64{}}
}

// validate checks a leader append of m against entry e (nil for an unknown producer). It
// returns the remembered batch when m duplicates one of the last batches of the same epoch.
func validate(e *producerEntry, m *batchMeta) (*ProducerBatch, error) {
	if m.control {
		if e != nil && m.epoch < e.epoch {
			return nil, ErrProducerFenced
		}
		if e != nil && m.coordinatorEpoch < e.coordinatorEpoch {
			return nil, ErrCoordinatorFenced
		}
		return nil, nil
	}
	if m.transactional && m.baseSeq < 0 {
		// A coordinator's batch (TxnOffsetCommit on __consumer_offsets) carries no sequence:
		// only the epoch is checked, as for Kafka's AppendOrigin.COORDINATOR.
		if e != nil && m.epoch < e.epoch {
			return nil, ErrProducerFenced
		}
		return nil, nil
	}
	if e == nil || e.epoch == noProducerEpoch {
		if m.baseSeq != 0 {
			return nil, ErrUnknownProducerID
		}
		return nil, nil
	}
	if m.epoch == e.epoch {
		last := m.lastSeq()
		for i := range e.batches {
			if b := &e.batches[i]; b.FirstSeq == m.baseSeq && b.LastSeq == last {
				return b, nil
			}
		}
	}
	switch {
	case m.epoch < e.epoch:
		if m.transactional {
			return nil, ErrProducerFenced
		}
		return nil, ErrInvalidProducerEpoch
	case m.epoch > e.epoch:
		if m.baseSeq != 0 {
			return nil, ErrOutOfOrderSequence
		}
	default:
		if !inSequence(e.lastSeq(), m.baseSeq) {
			return nil, ErrOutOfOrderSequence
		}
	}
	if !m.transactional && e.txnFirstOffset >= 0 {
		return nil, ErrInvalidTxnState
	}
	return nil, nil
}

// updateEntry applies an appended batch to a producer's entry (no checks: followers and
// recovery apply what the leader accepted).
func updateEntry(e *producerEntry, m *batchMeta) {
	if m.epoch != e.epoch {
		e.epoch = m.epoch
		e.batches = e.batches[:0]
	}
	e.lastTimestamp = m.maxTimestamp
	if m.control {
		e.coordinatorEpoch = m.coordinatorEpoch
		e.txnFirstOffset = -1
		return
	}
	if m.transactional && e.txnFirstOffset < 0 {
		e.txnFirstOffset = m.firstOffset
	}
	if len(e.batches) == producerBatchesKept {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:producerBatchesKept-1]
	}
	e.batches = append(e.batches, ProducerBatch{FirstSeq: m.baseSeq, LastSeq: m.lastSeq(),
		FirstOffset: m.firstOffset, LastOffset: m.lastOffset, Timestamp: m.maxTimestamp})
}

// entry returns the state of producer pid, creating an empty one.
// mu must be held.
func (s *producerState) entry(pid int64) *producerEntry {
	e := s.producers[pid]
	if e == nil {
		e = &producerEntry{epoch: noProducerEpoch, coordinatorEpoch: -1, txnFirstOffset: -1}
		s.producers[pid] = e
	}
	return e
}

// update applies one appended batch of a producer, including its transaction bookkeeping.
func (s *producerState) update(m *batchMeta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateLocked(m)
}

// updateLocked is update. mu must be held.
func (s *producerState) updateLocked(m *batchMeta) {
	e := s.entry(m.producerID)
	if m.control {
		first := e.txnFirstOffset
		if first < 0 {
			first = m.firstOffset
		}
		delete(s.ongoing, m.producerID)
		s.unreplicated = append(s.unreplicated, txnRange{first: first, last: m.lastOffset})
		if !m.commit {
			s.aborted = append(s.aborted, AbortedTxn{ProducerID: m.producerID, FirstOffset: first, LastOffset: m.lastOffset})
		}
	}
	updateEntry(e, m)
	if e.txnFirstOffset >= 0 {
		s.ongoing[m.producerID] = e.txnFirstOffset
	}
}

// validateAll checks a leader append of several batches in order, as if each earlier one had
// been applied. It returns the remembered batch when the append is a single duplicate batch.
func (s *producerState) validateAll(metas []batchMeta) (*ProducerBatch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var staged map[int64]*producerEntry
	for i := range metas {
		m := &metas[i]
		e, ok := staged[m.producerID]
		if !ok {
			if cur := s.producers[m.producerID]; cur != nil {
				e = cur.clone()
			}
		}
		dup, err := validate(e, m)
		if err != nil {
			return nil, err
		}
		if dup != nil {
			if len(metas) != 1 {
				return nil, ErrOutOfOrderSequence
			}
			d := *dup
			return &d, nil
		}
		if len(metas) == 1 {
			return nil, nil
		}
		if e == nil {
			e = &producerEntry{epoch: noProducerEpoch, coordinatorEpoch: -1, txnFirstOffset: -1}
		}
		updateEntry(e, m)
		if staged == nil {
			staged = map[int64]*producerEntry{}
		}
		staged[m.producerID] = e
	}
	return nil, nil
}

// firstUnstableOffset returns the last stable offset for high watermark hw: the first offset
// of the oldest open transaction or of a completed one whose marker hw does not cover yet,
// capped at hw.
func (s *producerState) firstUnstableOffset(hw int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.unreplicated[:0]
	lso := hw
	for _, t := range s.unreplicated {
		if t.last >= hw {
			kept = append(kept, t)
			lso = min(lso, t.first)
		}
	}
	s.unreplicated = kept
	for _, first := range s.ongoing {
		lso = min(lso, first)
	}
	return lso
}

// abortedBetween returns the aborted transactions overlapping [from, to).
func (s *producerState) abortedBetween(from, to int64) []AbortedTxn {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.aborted), func(i int) bool { return s.aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range s.aborted[i:] {
		if a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out
}

// expire removes producers without an open transaction whose last batch is older than
// expirationMs at nowMs (producer.id.expiration.ms). It reports how many went.
func (s *producerState) expire(nowMs, expirationMs int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for pid, e := range s.producers {
		if e.txnFirstOffset < 0 && nowMs-e.lastTimestamp >= expirationMs {
			delete(s.producers, pid)
			n++
		}
	}
	return n
}

// dropAbortedBefore forgets aborted transactions wholly below offset (log start moved).
func (s *producerState) dropAbortedBefore(offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.aborted), func(i int) bool { return s.aborted[i].LastOffset >= offset })
	if i > 0 {
		s.aborted = append(s.aborted[:0], s.aborted[i:]...)
	}
}

// lastRecord is what compaction must keep of an active producer (Kafka's LastRecord): the
// last offset of its last data batch, -1 when it has none since its epoch began, and its
// epoch, which a marker carries when that is all that is left.
type lastRecord struct {
	lastDataOffset int64
	epoch          int16
}

// lastRecords returns the lastRecord of every producer the log still knows (not expired).
func (s *producerState) lastRecords() map[int64]lastRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]lastRecord, len(s.producers))
	for pid, e := range s.producers {
		lr := lastRecord{lastDataOffset: -1, epoch: e.epoch}
		if n := len(e.batches); n > 0 {
			lr.lastDataOffset = e.batches[n-1].LastOffset
		}
		out[pid] = lr
	}
	return out
}

// infos returns every producer's state, by producer id.
func (s *producerState) infos() []ProducerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProducerInfo, 0, len(s.producers))
	for pid, e := range s.producers {
		out = append(out, ProducerInfo{ProducerID: pid, ProducerEpoch: e.epoch, CoordinatorEpoch: e.coordinatorEpoch,
			LastSequence: e.lastSeq(), LastTimestamp: e.lastTimestamp, CurrentTxnStartOffset: e.txnFirstOffset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// replaceWith makes s a copy of o's state (o must not be shared).
func (s *producerState) replaceWith(o *producerState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.producers, s.ongoing, s.unreplicated, s.aborted = o.producers, o.ongoing, o.unreplicated, o.aborted
}
