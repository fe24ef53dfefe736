package broker

// Produce (key 0), versions 3-11.
//
// Behaviour: each partition's records must be exactly one magic-2 record batch, validated as
// in batch.go; the batch is appended byte-for-byte (compression kept as produced), with offsets
// assigned by rewriting its header and, for message.timestamp.type=LogAppendTime, the append
// time stamped. acks must be 0, 1 or -1 (INVALID_REQUIRED_ACKS otherwise). Topics are not
// auto-created by Produce (as in Kafka, only Metadata creates them). acks=0 gets no response;
// if any partition failed the connection is closed instead, as Kafka does, so the client
// notices.
//
// Only the partition's leader appends (NOT_LEADER_OR_FOLLOWER elsewhere). acks=-1 is refused
// with NOT_ENOUGH_REPLICAS, nothing written, when the ISR is smaller than min.insync.replicas;
// otherwise the batch is appended and the answer waits, for every partition of the request,
// until the high watermark covers it (the produce purgatory), up to the request's timeout
// (REQUEST_TIMED_OUT), answering NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrinks below
// min.insync.replicas meanwhile (the data stays in the log) and NOT_LEADER_OR_FOLLOWER when
// leadership moves. These decisions are broker/replica's (CheckAppend, CheckAcks). On a lone
// broker (a cluster of one) the ISR is the leader alone, so acks=-1 is acks=1 with an ISR of
// one, as in Kafka with RF=1.
//
// Produce to __consumer_offsets gets INVALID_TOPIC_EXCEPTION, as for Kafka clients without
// internal-topic rights.
//
// Idempotent and transactional batches (producer id >= 0) are checked against the partition's
// producer state under the append lock (storage/producers.go, as Kafka's ProducerStateManager):
// a retry of one of the producer's last 5 batches in the same epoch is answered with success
// and the original base offset, nothing appended (with acks=-1 it still waits until the
// original is replicated); a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch
// INVALID_PRODUCER_EPOCH (PRODUCER_FENCED for transactional batches); a new epoch must start
// at sequence 0 (KIP-360); sequence != 0 from a producer the partition does not know (never
// seen, or idle longer than producer.id.expiration.ms) gets UNKNOWN_PRODUCER_ID; a
// non-transactional batch from a producer with an open transaction INVALID_TXN_STATE. The
// state moves with leadership because followers rebuild it from the batches they replicate.
//
// Differences from Kafka: transactional batches are not verified against the transaction
// coordinator (KIP-890). Keys of compressed batches in compacted topics are not checked.
// With the kchaos.bug.skip-idempotence-window switch (bugs.go) idempotent batches are
// appended without a producer id, so retries duplicate.

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/storage"
)

func handleProduce(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	failed := false
	type pending struct {
		p          *partition
		lastOffset int64
		ti, pi     int
	}
	var waits []pending
	for ti, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			if p, last := c.b.produceTo(r.Acks, rt.Topic, rp.Records, &sp); p != nil {
				waits = append(waits, pending{p, last, ti, pi})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(waits) > 0 {
		timer := time.NewTimer(time.Duration(max(r.TimeoutMillis, 0)) * time.Millisecond)
		for _, w := range waits {
			if kerrv := c.b.waitReplicated(w.p, w.lastOffset, timer.C); kerrv != nil {
				sp := &resp.Topics[w.ti].Partitions[w.pi]
				sp.ErrorCode = kerrv.Code
				if kerrv == kerr.RequestTimedOut {
					// Later partitions get the same verdict without waiting again.
					timer.Reset(0)
				}
			}
		}
		timer.Stop()
	}
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			if sp.ErrorCode != 0 {
				failed = true
				c.b.metrics.produceErrors.WithLabelValues(kerr.ErrorForCode(sp.ErrorCode).Error()).Inc()
			}
		}
	}
	if r.Acks == 0 {
		if failed {
			return nil, errCloseConn
		}
		return nil, nil
	}
	return resp, nil
}

// produceTo validates and appends one partition's batch, filling sp. For acks=-1 it returns
// the partition and the batch's last offset to wait for.
func (b *Broker) produceTo(acks int16, topicName string, records []byte, sp *kmsg.ProduceResponseTopicPartition) (*partition, int64) {
	sp.BaseOffset = -1
	sp.LogAppendTime = -1
	sp.LogStartOffset = -1
	fail := func(e *kerr.Error, msg string) {
		sp.ErrorCode = e.Code
		if msg != "" {
			sp.ErrorMessage = &msg
		}
	}
	if acks != 0 && acks != 1 && acks != -1 {
		fail(kerr.InvalidRequiredAcks, "acks must be 0, 1 or -1")
		return nil, 0
	}
	if topicName == offsetsTopic {
		fail(kerr.InvalidTopicException, "clients may not produce to the internal topic "+offsetsTopic)
		return nil, 0
	}
	p, kerrv := b.leaderOf(b.partitionFor(topicName, sp.Partition))
	if kerrv != nil {
		fail(kerrv, "")
		return nil, 0
	}
	b.mu.RLock()
	props := p.topic.props(b)
	b.mu.RUnlock()
	info, berr := validateProduceBatch(records, props.int("max.message.bytes"))
	if berr != nil {
		fail(berr.err, berr.msg)
		return nil, 0
	}
	if info.producerID >= 0 && !info.transactional && b.cfg.bug(bugSkipIdempotence) {
		forgetProducer(records)
	}
	logAppendTime := int64(-1)
	if props.get("message.timestamp.type") == "LogAppendTime" {
		logAppendTime = b.now().UnixMilli()
	}
	replicated := acks == -1 && !b.cfg.bug(bugAckBeforeReplication)
	p.mu.RLock()
	kerrv = p.rs.CheckAppend(replicated)
	isr, minISR := len(p.rs.Assignment().ISR), p.rs.MinISR()
	p.mu.RUnlock()
	if kerrv == kerr.NotEnoughReplicas {
		fail(kerrv, fmt.Sprintf("the ISR has %d replicas, fewer than min.insync.replicas=%d", isr, minISR))
		return nil, 0
	}
	ai, kerrv, msg := b.appendAsLeader(p, records, logAppendTime)
	if kerrv != nil {
		fail(kerrv, msg)
		return nil, 0
	}
	sp.BaseOffset = ai.FirstOffset
	sp.LogAppendTime = ai.LogAppendTime
	sp.LogStartOffset = p.LogStartOffset()
	if ai.Duplicate {
		b.metrics.produceDuplicates.WithLabelValues(topicName).Inc()
	} else {
		b.metrics.bytesIn.WithLabelValues(topicName).Add(float64(len(records)))
		b.metrics.messagesIn.WithLabelValues(topicName).Add(float64(info.records))
	}
	if replicated {
		return p, ai.LastOffset
	}
	return nil, 0
}

// appendAsLeader appends a validated batch to p as its leader and advances the high
// watermark as the replica state machine decides: at once when the ISR is the leader alone
// (a lone broker), else as the followers' fetches reach it.
func (b *Broker) appendAsLeader(p *partition, records []byte, logAppendTime int64) (storage.AppendInfo, *kerr.Error, string) {
	p.appendMu.Lock()
	p.mu.RLock()
	leader, epoch := p.rs.IsLeader(), p.rs.LeaderEpoch()
	p.mu.RUnlock()
	if !leader {
		p.appendMu.Unlock()
		return storage.AppendInfo{}, kerr.NotLeaderForPartition, "this broker stopped leading the partition"
	}
	ai, err := p.log.AppendAsLeader(records, epoch, logAppendTime)
	if err == nil && !ai.Duplicate {
		p.mu.Lock()
		p.rs.Appended(p.log.LogEndOffset())
		p.publish()
		p.mu.Unlock()
	}
	p.appendMu.Unlock()
	if kerrv := producerError(err); kerrv != nil {
		return ai, kerrv, err.Error()
	}
	if err != nil {
		b.log.Warn("append failed", "topic", p.topic.name, "partition", p.index, "err", err)
		return ai, storageError(err), err.Error()
	}
	b.arrivals.notify()
	return ai, nil, ""
}

// producerError maps the log's producer-state refusals onto Kafka errors; nil for other errors.
func producerError(err error) *kerr.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch
	case errors.Is(err, storage.ErrProducerFenced):
		return kerr.ProducerFenced
	case errors.Is(err, storage.ErrUnknownProducerID):
		return kerr.UnknownProducerID
	case errors.Is(err, storage.ErrInvalidTxnState):
		return kerr.InvalidTxnState
	case errors.Is(err, storage.ErrCoordinatorFenced):
		return kerr.TransactionCoordinatorFenced
	}
	return nil
}

// storageError maps a log error onto the Kafka error a client sees.
func storageError(err error) *kerr.Error {
	switch {
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange
	case errors.Is(err, storage.ErrCorrupt):
		return kerr.CorruptMessage
	case errors.Is(err, storage.ErrStorage):
		return kerr.KafkaStorageError
	default:
		return kerr.KafkaStorageError
	}
}
