package broker

// AddOffsetsToTxn (key 25), versions 0-3.
//
// Behaviour, as Kafka's transaction coordinator: adds the group's __consumer_offsets
// partition to the transaction (so its marker settles the TxnOffsetCommit offsets), with
// AddPartitionsToTxn's checks and errors (PRODUCER_FENCED answered INVALID_PRODUCER_EPOCH
// below v2). __consumer_offsets is created if it does not exist yet.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/txn"
)

func handleAddOffsetsToTxn(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.AddOffsetsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	b := c.b
	var err *kerr.Error
	if r.Group == "" {
		err = kerr.InvalidGroupID
	} else if err = b.groups.ensureReady(); err == nil {
		tp := txn.TopicPartition{Topic: offsetsTopic, Partition: partitionFor(r.Group, b.groups.numPartitions())}
		_, err = b.txns.update(r.TransactionalID, func(cur *txn.Txn) (*txn.Txn, *kerr.Error) {
			return txn.AddPartitions(cur, r.ProducerID, r.ProducerEpoch, []txn.TopicPartition{tp}, b.now())
		})
	}
	if err == kerr.ProducerFenced && req.version < 2 {
		err = kerr.InvalidProducerEpoch
	}
	if err != nil {
		resp.ErrorCode = err.Code
	}
	return resp, nil
}
