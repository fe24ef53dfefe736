package broker

// ListTransactions (key 66), versions 0-1.
//
// Behaviour, as Kafka: the transactional ids this broker coordinates, with producer id and
// state name, filtered by state names (unknown names are echoed in UnknownStateFilters and
// match nothing), by producer ids, and from v1 by DurationFilterMillis (only ids whose latest
// transaction started at least that long ago; negative for all). Differences from Kafka: the v2 id pattern
// filter is not served.

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/txn"
)

func handleListTransactions(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.ListTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[txn.State]bool{}
	for _, name := range r.StateFilters {
		if s, ok := txn.ParseState(name); ok {
			states[s] = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	if len(r.StateFilters) > 0 && len(states) == 0 {
		return resp, nil
	}
	now := c.b.now()
	tc := c.b.txns
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(tc.txns)) {
		t := tc.txns[id]
		if len(states) > 0 && !states[t.State] {
			continue
		}
		if len(r.ProducerIDFilters) > 0 && !slices.Contains(r.ProducerIDFilters, t.ProducerID) {
			continue
		}
		if req.version >= 1 && r.DurationFilterMillis >= 0 &&
			(t.Start.IsZero() || now.Sub(t.Start) < time.Duration(r.DurationFilterMillis)*time.Millisecond) {
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = id, t.ProducerID, t.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp, nil
}
