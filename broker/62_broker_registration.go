package broker

// BrokerRegistration (key 62), version 0, internal: not advertised to clients.
//
// Behaviour: a broker of the cluster registers with the active controller (KIP-631) and gets
// its broker epoch. The PLAINTEXT listener is its Kafka address; a CONTROLLER listener, when
// present, is the Raft address of a broker that is not a voter, which joins the quorum as an
// observer; any other listener (SSL, SASL_SSL, ...) is kept for Metadata answers to clients
// on that listener. A node that is not the active controller answers NOT_CONTROLLER.

import (
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleBrokerRegistration(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.BrokerRegistrationRequest)
	resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	cl := c.b.cl
	if r.ClusterID != c.b.cfg.ClusterID {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return resp, nil
	}
	reg := controller.Registration{ID: r.BrokerID}
	if r.Rack != nil {
		reg.Rack = *r.Rack
	}
	for _, l := range r.Listeners {
		switch l.Name {
		case "PLAINTEXT":
			reg.Host, reg.Port = l.Host, int32(l.Port)
		case "CONTROLLER":
			reg.RaftAddr = net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
		default:
			reg.Listeners = append(reg.Listeners, controller.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port)})
		}
	}
	epoch, err := cl.ctl.RegisterBroker(reg)
	if err != nil {
		resp.ErrorCode = controller.ErrorCode(err)
		return resp, nil
	}
	resp.BrokerEpoch = epoch
	return resp, nil
}
