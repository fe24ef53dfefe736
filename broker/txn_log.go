package broker

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/txn"
)

// txnStateTopic is the internal compacted topic holding the transaction coordinator's state,
// with Kafka's record schemas: key TxnMetadataKey (version 0, the transactional id), value
// TxnMetadataValue (version 0); the latest record of an id is its state.
const txnStateTopic = "__transaction_state"

// txnStateSegmentBytes is transaction.state.log.segment.bytes' Kafka default (100 MiB).
const txnStateSegmentBytes = 104857600

func txnKey(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: id}
	return k.AppendTo(nil)
}

// txnRecord serialises t as Kafka's coordinator stores it.
func txnRecord(t *txn.Txn) record {
	v := kmsg.NewTxnMetadataValue()
	v.Version = 0
	v.ProducerID, v.ProducerEpoch = t.ProducerID, t.Epoch
	v.TimeoutMillis = int32(t.Timeout / time.Millisecond)
	v.State = kmsg.TransactionState(t.State)
	var cur *kmsg.TxnMetadataValueTopic
	for _, tp := range t.SortedPartitions() {
		if cur == nil || cur.Topic != tp.Topic {
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
			cur = &v.Topics[len(v.Topics)-1]
		}
		cur.Partitions = append(cur.Partitions, tp.Partition)
	}
	v.LastUpdateTimestamp = t.LastUpdate.UnixMilli()
	v.StartTimestamp = -1
	if !t.Start.IsZero() {
		v.StartTimestamp = t.Start.UnixMilli()
	}
	return record{key: txnKey(t.ID), value: v.AppendTo(nil)}
}

// decodeTxnRecord parses one __transaction_state record; a nil Txn with no error is a
// tombstone of id.
func decodeTxnRecord(r record) (string, *txn.Txn, error) {
	if len(r.key) < 2 {
		return "", nil, fmt.Errorf("record key of %d bytes", len(r.key))
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(r.key); err != nil {
		return "", nil, fmt.Errorf("transaction key: %w", err)
	}
	if r.value == nil {
		return k.TransactionalID, nil, nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(r.value); err != nil {
		return "", nil, fmt.Errorf("transaction value: %w", err)
	}
	t := &txn.Txn{ID: k.TransactionalID, ProducerID: v.ProducerID, Epoch: v.ProducerEpoch,
		LastProducerID: -1, LastEpoch: -1,
		Timeout: time.Duration(v.TimeoutMillis) * time.Millisecond, State: txn.State(v.State),
		Partitions: map[txn.TopicPartition]struct{}{}, LastUpdate: time.UnixMilli(v.LastUpdateTimestamp)}
	if v.StartTimestamp >= 0 {
		t.Start = time.UnixMilli(v.StartTimestamp)
	}
	for _, tt := range v.Topics {
		for _, p := range tt.Partitions {
			t.Partitions[txn.TopicPartition{Topic: tt.Topic, Partition: p}] = struct{}{}
		}
	}
	return t.ID, t, nil
}

// appendInternal appends one coordinator batch to a partition this broker leads and returns
// once the ISR has it (acks=all, bounded by offsetsCommitTimeout).
func (b *Broker) appendInternal(topicName string, index int32, raw []byte) *kerr.Error {
	p, kerrv := b.partitionFor(topicName, index)
	if kerrv != nil {
		return kerrv
	}
	ai, kerrv, msg := b.appendAsLeader(p, raw, -1)
	if kerrv != nil {
		b.log.Warn("coordinator append", "topic", topicName, "partition", index, "err", kerrv, "msg", msg)
		return kerrv
	}
	timer := time.NewTimer(offsetsCommitTimeout)
	defer timer.Stop()
	if kerrv := b.waitReplicated(p, ai.LastOffset, timer.C); kerrv != nil {
		return kerrv
	}
	return nil
}

// readTxnPartition replays partition p of __transaction_state to its log end offset (the new
// leader's log is the partition's truth, as for the group coordinator).
func (tc *txnCoordinator) readTxnPartition(p int32) (map[string]*txn.Txn, error) {
	part, kerrv := tc.b.partitionFor(txnStateTopic, p)
	if kerrv != nil {
		return nil, kerrv
	}
	txns := map[string]*txn.Txn{}
	off := part.LogStartOffset()
	end := part.LogEndOffset()
	for off < end {
		res, err := part.log.Read(off, 1<<20, end, true)
		if err != nil {
			return nil, fmt.Errorf("broker: read %s-%d at %d: %w", txnStateTopic, p, off, err)
		}
		raw, err := res.Bytes()
		res.Release()
		if err != nil {
			return nil, err
		}
		if len(raw) == 0 {
			break
		}
		next, err := replayBatches(raw, func(r record) error {
			id, t, err := decodeTxnRecord(r)
			if err != nil {
				tc.b.log.Warn("skipping malformed __transaction_state record", "partition", p, "err", err)
				return nil
			}
			if t == nil {
				delete(txns, id)
				return nil
			}
			if prev := txns[id]; prev != nil && (prev.ProducerID != t.ProducerID || prev.Epoch != t.Epoch) {
				t.LastProducerID, t.LastEpoch = prev.ProducerID, prev.Epoch
			} else if prev != nil {
				t.LastProducerID, t.LastEpoch = prev.LastProducerID, prev.LastEpoch
			}
			txns[id] = t
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("broker: replay %s-%d: %w", txnStateTopic, p, err)
		}
		if next <= off {
			break
		}
		off = next
	}
	return txns, nil
}

// txnPartitionOf is the __transaction_state partition of a transactional id (Kafka's
// abs(hashCode) % partitions, as for groups).
func (tc *txnCoordinator) txnPartitionOf(id string) int32 {
	return partitionFor(id, tc.numPartitions())
}
