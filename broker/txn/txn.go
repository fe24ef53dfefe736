// Package txn is the transaction coordinator's state machine (KIP-98, KIP-360, KIP-588): the
// state of one transactional id and the transitions InitProducerId, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, timeout expiry and marker completion make, with Kafka's errors.
// It does no I/O: every operation returns the next state as a new value, which the broker
// persists to __transaction_state before installing it, so a failed write changes nothing.
package txn

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a transaction's state, with Kafka's on-disk codes (TxnMetadataValue.State).
type State int8

// The states of a transactional id.
const (
	Empty             State = 0 // no transaction since the last completion or init
	Ongoing           State = 1 // partitions added, not yet ended
	PrepareCommit     State = 2 // EndTxn(commit) persisted, markers being written
	PrepareAbort      State = 3 // EndTxn(abort) or an expiry persisted, markers being written
	CompleteCommit    State = 4 // commit markers written everywhere
	CompleteAbort     State = 5 // abort markers written everywhere
	Dead              State = 6 // the id expired; never written by this coordinator
	PrepareEpochFence State = 7 // an epoch bump pending; never persisted by this coordinator
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// String is the state's Kafka name, as DescribeTransactions and ListTransactions report it.
func (s State) String() string {
	if int(s) >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// ParseState returns the state named s (Kafka's names) and whether it exists.
func ParseState(s string) (State, bool) {
	i := slices.Index(stateNames[:], s)
	return State(i), i >= 0
}

// Preparing reports whether markers are being written for the state (the transaction is
// completing and the id is busy).
func (s State) Preparing() bool { return s == PrepareCommit || s == PrepareAbort }

// TopicPartition names a partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Config bounds what clients may ask for.
type Config struct {
	// MaxTimeout is transaction.max.timeout.ms; default 15 minutes.
	MaxTimeout time.Duration
}

// Txn is the coordinator's state of one transactional id.
type Txn struct {
	ID         string
	ProducerID int64
	Epoch      int16
	// LastProducerID and LastEpoch are the producer id and epoch before the latest bump
	// (-1 when none): a client retrying InitProducerId with them gets the current ones back
	// (KIP-360) instead of PRODUCER_FENCED.
	LastProducerID int64
	LastEpoch      int16
	Timeout        time.Duration
	State          State
	// Partitions are the partitions of the ongoing or completing transaction.
	Partitions map[TopicPartition]struct{}
	// Start is when the ongoing transaction added its first partition; LastUpdate is the
	// last transition.
	Start      time.Time
	LastUpdate time.Time
}

// maxEpoch is the highest epoch handed out before a producer id is replaced: Kafka keeps
// Short.MaxValue free so the coordinator can always bump once more to fence.
const maxEpoch = 1<<15 - 2

// clone returns a deep copy of t, the base of every transition.
func (t *Txn) clone() *Txn {
	n := *t
	n.Partitions = maps.Clone(t.Partitions)
	if n.Partitions == nil {
		n.Partitions = map[TopicPartition]struct{}{}
	}
	return &n
}

// SortedPartitions returns the transaction's partitions by topic, then partition.
func (t *Txn) SortedPartitions() []TopicPartition {
	return slices.SortedFunc(maps.Keys(t.Partitions), func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}

// InitRequest is an InitProducerId request for a transactional id.
type InitRequest struct {
	Timeout time.Duration
	// ProducerID and Epoch are the client's current ones (KIP-360), -1 for a new producer.
	ProducerID int64
	Epoch      int16
}

// InitResult says what InitProducerId did.
type InitResult struct {
	// Next is the state to persist before answering; nil when nothing changes.
	Next *Txn
	// Abort is set when the id had an ongoing transaction: Next is PrepareAbort with the
	// bumped epoch, the markers must be written, and the client is answered
	// CONCURRENT_TRANSACTIONS so it retries once the abort completes.
	Abort bool
}

// Init handles InitProducerId for transactional id id. cur is the current state (nil for an
// unknown id); newID hands out a fresh producer id when one is needed.
func Init(cfg Config, id string, cur *Txn, req InitRequest, now time.Time, newID func() (int64, error)) (InitResult, *kerr.Error) {
	if req.Timeout <= 0 || (cfg.MaxTimeout > 0 && req.Timeout > cfg.MaxTimeout) {
		return InitResult{}, kerr.InvalidTransactionTimeout
	}
	if cur == nil {
		if req.ProducerID >= 0 {
			// KIP-360 recovery for an id whose state is gone: Kafka fences rather than
			// guessing.
			return InitResult{}, kerr.InvalidProducerIDMapping
		}
		pid, err := newID()
		if err != nil {
			return InitResult{}, kerr.CoordinatorNotAvailable
		}
		return InitResult{Next: &Txn{ID: id, ProducerID: pid, Epoch: 0, LastProducerID: -1, LastEpoch: -1,
			Timeout: req.Timeout, State: Empty, Partitions: map[TopicPartition]struct{}{}, LastUpdate: now}}, nil
	}
	if req.ProducerID >= 0 {
		switch {
		case req.ProducerID == cur.ProducerID && req.Epoch == cur.Epoch:
			// The client's current epoch: bump it below.
		case req.ProducerID == cur.ProducerID && req.Epoch == cur.LastEpoch && !cur.State.Preparing() && cur.State != Ongoing,
			req.ProducerID == cur.LastProducerID && req.Epoch == cur.LastEpoch && !cur.State.Preparing() && cur.State != Ongoing:
			// A retry of the init that made the current epoch: answer it again.
			return InitResult{Next: nil}, nil
		default:
			return InitResult{}, kerr.ProducerFenced
		}
	}
	switch cur.State {
	case PrepareCommit, PrepareAbort, PrepareEpochFence:
		return InitResult{}, kerr.ConcurrentTransactions
	case Ongoing:
		next, err := cur.bump(newID)
		if err != nil {
			return InitResult{}, err
		}
		next.State = PrepareAbort
		next.LastUpdate = now
		return InitResult{Next: next, Abort: true}, nil
	}
	next, err := cur.bump(newID)
	if err != nil {
		return InitResult{}, err
	}
	next.State, next.Timeout, next.LastUpdate, next.Start = Empty, req.Timeout, now, time.Time{}
	clear(next.Partitions)
	return InitResult{Next: next}, nil
}

// bump returns a copy of t with the next epoch, or a fresh producer id at epoch 0 when the
// epoch is exhausted.
func (t *Txn) bump(newID func() (int64, error)) (*Txn, *kerr.Error) {
	next := t.clone()
	next.LastProducerID, next.LastEpoch = t.ProducerID, t.Epoch
	if t.Epoch >= maxEpoch {
		pid, err := newID()
		if err != nil {
			return nil, kerr.CoordinatorNotAvailable
		}
		next.ProducerID, next.Epoch = pid, 0
		return next, nil
	}
	next.Epoch = t.Epoch + 1
	return next, nil
}

// checkProducer validates the producer id and epoch a client sent for t.
func (t *Txn) checkProducer(pid int64, epoch int16) *kerr.Error {
	if t == nil || pid != t.ProducerID {
		return kerr.InvalidProducerIDMapping
	}
	if epoch != t.Epoch {
		return kerr.ProducerFenced
	}
	return nil
}

// AddPartitions handles AddPartitionsToTxn (and AddOffsetsToTxn, which adds the group's
// __consumer_offsets partition). It returns the state to persist, or nil when every
// partition is already part of the ongoing transaction.
func AddPartitions(t *Txn, pid int64, epoch int16, parts []TopicPartition, now time.Time) (*Txn, *kerr.Error) {
	if err := t.checkProducer(pid, epoch); err != nil {
		return nil, err
	}
	switch t.State {
	case PrepareCommit, PrepareAbort, PrepareEpochFence:
		return nil, kerr.ConcurrentTransactions
	case Dead:
		return nil, kerr.InvalidTxnState
	case Ongoing:
		added := true
		for _, tp := range parts {
			_, ok := t.Partitions[tp]
			added = added && ok
		}
		if added {
			return nil, nil
		}
	}
	next := t.clone()
	if t.State != Ongoing {
		clear(next.Partitions)
		next.Start = now
	}
	for _, tp := range parts {
		next.Partitions[tp] = struct{}{}
	}
	next.State, next.LastUpdate = Ongoing, now
	return next, nil
}

// End handles EndTxn. It returns the state to persist (PrepareCommit or PrepareAbort; for a
// transaction without partitions directly the Complete state) or nil for a retry of an
// EndTxn that already completed.
func End(t *Txn, pid int64, epoch int16, commit bool, now time.Time) (*Txn, *kerr.Error) {
	if err := t.checkProducer(pid, epoch); err != nil {
		return nil, err
	}
	switch t.State {
	case Ongoing:
		next := t.clone()
		next.State, next.LastUpdate = PrepareAbort, now
		if commit {
			next.State = PrepareCommit
		}
		if len(next.Partitions) == 0 {
			return next.Completed(now), nil
		}
		return next, nil
	case CompleteCommit, CompleteAbort:
		if (t.State == CompleteCommit) == commit {
			return nil, nil
		}
		return nil, kerr.InvalidTxnState
	case PrepareCommit, PrepareAbort:
		if (t.State == PrepareCommit) == commit {
			return nil, kerr.ConcurrentTransactions
		}
		return nil, kerr.InvalidTxnState
	default:
		return nil, kerr.InvalidTxnState
	}
}

// Completed returns the Complete state that follows a Prepare state once every marker is
// written: the partitions are cleared. It returns t itself for any other state.
func (t *Txn) Completed(now time.Time) *Txn {
	if !t.State.Preparing() {
		return t
	}
	next := t.clone()
	next.State = CompleteAbort
	if t.State == PrepareCommit {
		next.State = CompleteCommit
	}
	clear(next.Partitions)
	next.LastUpdate = now
	return next
}

// Expired reports whether t is an ongoing transaction past its timeout at now.
func (t *Txn) Expired(now time.Time) bool {
	return t.State == Ongoing && now.Sub(t.Start) > t.Timeout
}

// Expire returns the state that aborts an expired transaction: PrepareAbort with the epoch
// bumped, so the producer that let it time out is fenced, as Kafka does. newID serves an
// exhausted epoch.
func Expire(t *Txn, now time.Time, newID func() (int64, error)) (*Txn, *kerr.Error) {
	if t.State != Ongoing {
		return nil, kerr.InvalidTxnState
	}
	next, err := t.bump(newID)
	if err != nil {
		return nil, err
	}
	next.State, next.LastUpdate = PrepareAbort, now
	return next, nil
}
