package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// initTransactionalProducer answers InitProducerId for a transactional id. Until the
// transaction coordinator exists it is COORDINATOR_NOT_AVAILABLE.
func initTransactionalProducer(c *conn, r *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	return resp
}
