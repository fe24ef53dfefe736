package broker

// AddPartitionsToTxn (key 24), versions 0-3.
//
// Behaviour, as Kafka's transaction coordinator: the producer id must be the transactional
// id's (else INVALID_PRODUCER_ID_MAPPING) at its current epoch (else PRODUCER_FENCED, answered
// INVALID_PRODUCER_EPOCH below v2, KIP-588); while the previous transaction completes the
// answer is CONCURRENT_TRANSACTIONS. Unknown partitions get UNKNOWN_TOPIC_OR_PARTITION and
// the others OPERATION_NOT_ATTEMPTED, nothing is added. The new partition set (state Ongoing)
// is persisted to __transaction_state before the answer. Differences from Kafka: v4+ (the
// brokers' batched form, KIP-890) is not served.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/txn"
)

func handleAddPartitionsToTxn(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.AddPartitionsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	b := c.b
	errs := make([][]*kerr.Error, len(r.Topics))
	var parts []txn.TopicPartition
	unknown := false
	for i, t := range r.Topics {
		errs[i] = make([]*kerr.Error, len(t.Partitions))
		for j, p := range t.Partitions {
			if !b.partitionExists(t.Topic, p) {
				errs[i][j] = kerr.UnknownTopicOrPartition
				unknown = true
				continue
			}
			parts = append(parts, txn.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	var all *kerr.Error
	if unknown {
		all = kerr.OperationNotAttempted
	} else {
		_, all = b.txns.update(r.TransactionalID, func(cur *txn.Txn) (*txn.Txn, *kerr.Error) {
			return txn.AddPartitions(cur, r.ProducerID, r.ProducerEpoch, parts, b.now())
		})
		if all == kerr.ProducerFenced && req.version < 2 {
			all = kerr.InvalidProducerEpoch
		}
	}
	for i, t := range r.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition = p
			if e := errs[i][j]; e != nil {
				rp.ErrorCode = e.Code
			} else if all != nil {
				rp.ErrorCode = all.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// partitionExists reports whether the partition exists in the cluster.
func (b *Broker) partitionExists(topicName string, index int32) bool {
	return b.cl.ctl.Image().Partition(topicName, index) != nil
}
