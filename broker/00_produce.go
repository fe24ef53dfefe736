package broker

// Produce (key 0), versions 3-11.
//
// Behaviour: each partition's records must be exactly one magic-2 record batch, validated as
// in batch.go; the batch is appended byte-for-byte (compression kept as produced), with offsets
// assigned by rewriting its header and, for message.timestamp.type=LogAppendTime, the append
// time stamped. acks must be 0, 1 or -1 (INVALID_REQUIRED_ACKS otherwise). Topics are not
// auto-created by Produce (as in Kafka, only Metadata creates them). acks=0 gets no response;
// if any partition failed the connection is closed instead, as Kafka does, so the client
// notices. On a single node acks=-1 is acks=1 with an ISR of one, as in Kafka with RF=1.
//
// Produce to __consumer_offsets gets INVALID_TOPIC_EXCEPTION, as for Kafka clients without
// internal-topic rights.
//
// Differences from Kafka: idempotent and transactional batches (producer id >= 0) are refused
// with UNKNOWN_PRODUCER_ID because the broker issues no producer ids yet (InitProducerId is not
// advertised, so well-behaved clients never send them). Keys of compressed batches in
// compacted topics are not checked.

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/storage"
)

func handleProduce(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	failed := false
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			c.b.produceTo(r.Acks, rt.Topic, rp.Records, &sp)
			if sp.ErrorCode != 0 {
				failed = true
				c.b.metrics.produceErrors.WithLabelValues(kerr.ErrorForCode(sp.ErrorCode).Error()).Inc()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if r.Acks == 0 {
		if failed {
			return nil, errCloseConn
		}
		return nil, nil
	}
	return resp, nil
}

// produceTo validates and appends one partition's batch, filling sp.
func (b *Broker) produceTo(acks int16, topicName string, records []byte, sp *kmsg.ProduceResponseTopicPartition) {
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
		return
	}
	if topicName == offsetsTopic {
		fail(kerr.InvalidTopicException, "clients may not produce to the internal topic "+offsetsTopic)
		return
	}
	p, kerrv := b.partitionFor(topicName, sp.Partition)
	if kerrv != nil {
		fail(kerrv, "")
		return
	}
	b.mu.RLock()
	props := p.topic.props(b)
	b.mu.RUnlock()
	info, berr := validateProduceBatch(records, props.int("max.message.bytes"))
	if berr != nil {
		fail(berr.err, berr.msg)
		return
	}
	if info.producerID >= 0 || info.transactional {
		fail(kerr.UnknownProducerID, "this broker issues no producer ids; idempotent and transactional produce are not supported yet")
		return
	}
	logAppendTime := int64(-1)
	if props.get("message.timestamp.type") == "LogAppendTime" {
		logAppendTime = time.Now().UnixMilli()
	}
	ai, kerrv, msg := b.appendAsLeader(p, records, logAppendTime)
	if kerrv != nil {
		fail(kerrv, msg)
		return
	}
	sp.BaseOffset = ai.FirstOffset
	sp.LogAppendTime = ai.LogAppendTime
	sp.LogStartOffset = p.LogStartOffset()
	b.metrics.bytesIn.WithLabelValues(topicName).Add(float64(len(records)))
	b.metrics.messagesIn.WithLabelValues(topicName).Add(float64(info.records))
}

// appendAsLeader appends a validated batch to p as its leader and advances the high
// watermark: with an ISR of one, an appended batch is committed at once.
func (b *Broker) appendAsLeader(p *partition, records []byte, logAppendTime int64) (storage.AppendInfo, *kerr.Error, string) {
	p.appendMu.Lock()
	ai, err := p.log.AppendAsLeader(records, p.LeaderEpoch(), logAppendTime)
	if err == nil {
		p.advanceHighWatermark(p.log.LogEndOffset())
	}
	p.appendMu.Unlock()
	if err != nil {
		b.log.Warn("append failed", "topic", p.topic.name, "partition", p.index, "err", err)
		return ai, storageError(err), err.Error()
	}
	b.arrivals.notify()
	return ai, nil, ""
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
