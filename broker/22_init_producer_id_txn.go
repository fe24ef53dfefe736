package broker

// InitProducerId (key 22) for a transactional id: the transaction coordinator's part. The
// InitProducerId handler calls initTransactionalProducer for a non-null transactional id.
//
// Behaviour, as Kafka's coordinator (KIP-98, KIP-360, KIP-588): a timeout above
// transaction.max.timeout.ms (default 900000) gets INVALID_TRANSACTION_TIMEOUT; a new id gets
// a fresh producer id at epoch 0; a known id gets its epoch bumped (a fresh producer id once
// the epoch is exhausted), which fences every older producer instance; an id with an
// ongoing transaction has it aborted with the bumped epoch and the client is answered
// CONCURRENT_TRANSACTIONS, as while a previous transaction completes, so it retries. A
// request carrying the client's producer id and epoch (KIP-360) must match the current ones
// (or be the retry of the init that made them), else PRODUCER_FENCED; below v4 that error is
// answered INVALID_PRODUCER_EPOCH. The state is persisted to __transaction_state first.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/txn"
)

func initTransactionalProducer(c *conn, r *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	id := ""
	if r.TransactionalID != nil {
		id = *r.TransactionalID
	}
	req := txn.InitRequest{Timeout: time.Duration(r.TransactionTimeoutMillis) * time.Millisecond, ProducerID: r.ProducerID, Epoch: r.ProducerEpoch}
	if r.Version < 3 {
		req.ProducerID, req.Epoch = -1, -1
	}
	b := c.b
	t, err := b.txns.update(id, func(cur *txn.Txn) (*txn.Txn, *kerr.Error) {
		res, err := txn.Init(b.txns.cfg, id, cur, req, b.now(), b.producerIDs.nextID)
		if err != nil {
			return nil, err
		}
		if res.Abort {
			return res.Next, kerr.ConcurrentTransactions
		}
		return res.Next, nil
	})
	if err != nil {
		if err == kerr.ProducerFenced && r.Version < 4 {
			err = kerr.InvalidProducerEpoch
		}
		resp.ErrorCode = err.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = t.ProducerID, t.Epoch
	return resp
}
