package broker

// DescribeTransactions (key 65), version 0.
//
// Behaviour, as Kafka: for each transactional id this broker coordinates, its state name,
// timeout, start timestamp (-1 with no ongoing transaction), producer id and epoch, and the
// partitions of the ongoing or completing transaction; ids of partitions this broker does not
// lead get NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while loading), unknown ids
// TRANSACTIONAL_ID_NOT_FOUND.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/txn"
)

func handleDescribeTransactions(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DescribeTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	tc := c.b.txns
	ready := tc.ensureReady()
	for _, id := range r.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.StartTimestamp, st.ProducerID, st.ProducerEpoch = id, -1, -1, -1
		err := ready
		if err == nil {
			tc.mu.Lock()
			t, lerr := tc.lookup(id)
			if lerr == nil && t == nil {
				lerr = kerr.TransactionalIDNotFound
			}
			if err = lerr; err == nil {
				st.State = t.State.String()
				st.TimeoutMillis = int32(t.Timeout.Milliseconds())
				if !t.Start.IsZero() && t.State != txn.Empty {
					st.StartTimestamp = t.Start.UnixMilli()
				}
				st.ProducerID, st.ProducerEpoch = t.ProducerID, t.Epoch
				for _, tp := range t.SortedPartitions() {
					if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.Topic {
						rt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
						rt.Topic = tp.Topic
						st.Topics = append(st.Topics, rt)
					}
					st.Topics[len(st.Topics)-1].Partitions = append(st.Topics[len(st.Topics)-1].Partitions, tp.Partition)
				}
			}
			tc.mu.Unlock()
		}
		if err != nil {
			st.ErrorCode = err.Code
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
