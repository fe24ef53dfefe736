package broker

// EndTxn (key 26), versions 0-3.
//
// Behaviour, as Kafka's transaction coordinator: the producer id and epoch are checked as for
// AddPartitionsToTxn (PRODUCER_FENCED answered INVALID_PRODUCER_EPOCH below v2); an ongoing
// transaction moves to PrepareCommit or PrepareAbort, which is persisted to
// __transaction_state before the answer; the markers are then written to every partition's
// leader and CompleteCommit or CompleteAbort persisted (txn_markers.go). Retrying the same
// EndTxn while the markers are written gets CONCURRENT_TRANSACTIONS, after completion success;
// the opposite outcome, or ending with no transaction, gets INVALID_TXN_STATE.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/txn"
)

func handleEndTxn(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.EndTxnRequest)
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	_, err := c.b.txns.update(r.TransactionalID, func(cur *txn.Txn) (*txn.Txn, *kerr.Error) {
		return txn.End(cur, r.ProducerID, r.ProducerEpoch, r.Commit, c.b.now())
	})
	if err == kerr.ProducerFenced && req.version < 2 {
		err = kerr.InvalidProducerEpoch
	}
	if err != nil {
		resp.ErrorCode = err.Code
	}
	return resp, nil
}
