package broker

// DescribeCluster (key 60), versions 0-1.
//
// Behaviour: the cluster id, the active controller and the live (registered, unfenced)
// brokers from the metadata image. EndpointType 2 (controllers, v1) lists the same brokers:
// every voter of the controller quorum is also a broker (combined mode), and a lone broker is
// its own controller.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = c.b.cfg.ClusterID
	resp.ClusterAuthorizedOperations = notAuthorizedOps
	if req.version >= 1 {
		resp.EndpointType = r.EndpointType
	}
	cl := c.b.cl
	resp.ControllerID = cl.ctl.LeaderID()
	for _, br := range liveBrokers(cl.ctl.Image()) {
		e := kmsg.NewDescribeClusterResponseBroker()
		e.NodeID, e.Host, e.Port, e.Rack = br.NodeID, br.Host, br.Port, br.Rack
		resp.Brokers = append(resp.Brokers, e)
	}
	return resp, nil
}
