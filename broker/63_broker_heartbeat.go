package broker

// BrokerHeartbeat (key 63), version 0, internal: not advertised to clients.
//
// Behaviour: a registered broker's heartbeat to the active controller (KIP-631); the answer
// says whether it is fenced. Errors: BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH (register
// again), NOT_CONTROLLER. WantFence and WantShutdown are not modelled (see the controller
// package).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleBrokerHeartbeat(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.BrokerHeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	cl := c.b.cl
	fenced, err := cl.ctl.Heartbeat(r.BrokerID, r.BrokerEpoch)
	resp.ErrorCode = controller.ErrorCode(err)
	resp.IsFenced = fenced
	resp.IsCaughtUp = true
	return resp, nil
}
