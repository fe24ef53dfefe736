package broker

// InitProducerId (key 22), versions 0-5.
//
// Behaviour: without a transactional id (an idempotent producer) every request gets a fresh
// cluster-unique producer id (producer_ids.go) with epoch 0, whatever producer id and epoch
// it carries, as Kafka does for non-transactional producers; any broker answers. A failure to
// lease ids (a broken disk) is COORDINATOR_NOT_AVAILABLE, which clients retry. With a
// transactional id the request goes to the transaction coordinator
// (initTransactionalProducer).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitProducerID(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.InitProducerIDRequest)
	if r.TransactionalID != nil {
		return initTransactionalProducer(c, r), nil
	}
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	id, err := c.b.producerIDs.nextID()
	if err != nil {
		c.b.log.Warn("cannot issue a producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
