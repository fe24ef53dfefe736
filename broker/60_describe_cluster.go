package broker

// DescribeCluster (key 60), versions 0-1.
//
// Behaviour: the cluster id, the controller and the brokers. EndpointType 2 (controllers,
// v1) lists the same node, since a single broker is its own controller (combined mode).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = c.b.cfg.ClusterID
	resp.ControllerID = c.b.cfg.NodeID
	resp.ClusterAuthorizedOperations = notAuthorizedOps
	if req.version >= 1 {
		resp.EndpointType = r.EndpointType
	}
	if c.b.cl != nil {
		c.b.cl.describeCluster(resp)
		return resp, nil
	}
	e := kmsg.NewDescribeClusterResponseBroker()
	e.NodeID = c.b.cfg.NodeID
	e.Host = c.b.advertise.host
	e.Port = c.b.advertise.port
	resp.Brokers = append(resp.Brokers, e)
	return resp, nil
}
