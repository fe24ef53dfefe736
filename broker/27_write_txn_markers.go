package broker

// WriteTxnMarkers (key 27), versions 0-1.
//
// Behaviour: sent by a transaction coordinator to each partition leader of a transaction.
// For every (marker, partition) the leader appends a control batch holding an end-transaction
// marker (commit or abort, with the coordinator epoch; attributes control|transactional, the
// producer's id and epoch) and answers once the high watermark covers it, up to
// request.timeout.ms (30s; REQUEST_TIMED_OUT). The append is checked against the partition's
// producer state: an older producer epoch is PRODUCER_FENCED (Kafka: INVALID_PRODUCER_EPOCH
// before KIP-588's rename) and an older coordinator epoch TRANSACTION_COORDINATOR_FENCED.
// Appending the marker completes the producer's open transaction; an abort adds it to the
// aborted-transaction index. A committed marker for a __consumer_offsets partition is passed
// to the group coordinator (onTxnMarker), which makes the transaction's offset commits
// visible or drops them. Advertised, as Kafka does on its broker listener.

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/storage"
)

// txnMarkerTimeout bounds the wait for a marker's replication (Kafka's request.timeout.ms).
const txnMarkerTimeout = 30 * time.Second

func handleWriteTxnMarkers(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.WriteTxnMarkersRequest)
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	type pending struct {
		p          *partition
		lastOffset int64
		mi, ti, pi int
	}
	var waits []pending
	for mi, m := range r.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for ti, mt := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = mt.Topic
			for pi, part := range mt.Partitions {
				sp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = part
				p, kerrv := c.b.leaderOf(c.b.partitionFor(mt.Topic, part))
				if kerrv == nil {
					b := txnMarkerBatch(m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch, c.b.now().UnixMilli())
					var ai storage.AppendInfo
					ai, kerrv, _ = c.b.appendAsLeader(p, b, -1)
					if kerrv == nil {
						waits = append(waits, pending{p, ai.LastOffset, mi, ti, pi})
					}
				}
				if kerrv != nil {
					sp.ErrorCode = kerrv.Code
				}
				rt.Partitions = append(rt.Partitions, sp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	if len(waits) > 0 {
		timer := time.NewTimer(txnMarkerTimeout)
		for _, w := range waits {
			sp := &resp.Markers[w.mi].Topics[w.ti].Partitions[w.pi]
			if kerrv := c.b.waitReplicated(w.p, w.lastOffset, timer.C); kerrv != nil {
				sp.ErrorCode = kerrv.Code
				if kerrv == kerr.RequestTimedOut {
					timer.Reset(0)
				}
				continue
			}
			if w.p.topic.name == offsetsTopic {
				m := r.Markers[w.mi]
				c.b.groups.onTxnMarker(w.p.index, m.ProducerID, m.Committed)
			}
		}
		timer.Stop()
	}
	return resp, nil
}

// txnMarkerBatch encodes a control batch with one end-transaction marker record: key
// (version 0, type 1 commit / 0 abort), value (version 0, coordinator epoch).
func txnMarkerBatch(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32, nowMs int64) []byte {
	key := kmsg.ControlRecordKey{Version: 0, Type: kmsg.ControlRecordKeyTypeAbort}
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	val := kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: coordinatorEpoch}
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // the zero length took one byte
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrControl | attrTransactional,
		FirstTimestamp:       nowMs,
		MaxTimestamp:         nowMs,
		ProducerID:           producerID,
		ProducerEpoch:        producerEpoch,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              rec.AppendTo(nil),
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[batchLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttributes:], castagnoli))
	return b
}
