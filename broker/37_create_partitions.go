package broker

// CreatePartitions (key 37), versions 0-3.
//
// Behaviour: decided by the active controller (forwarded there by other brokers, see
// admin.go): raises a topic's partition count to Count, placing the new partitions over the
// live brokers with the topic's replication factor, or on an explicit Assignment (one replica
// list per new partition, the topic's replication factor each, registered brokers only,
// INVALID_REPLICA_ASSIGNMENT otherwise). A count not above the current one is
// INVALID_PARTITIONS; ValidateOnly changes nothing. A topic named twice is INVALID_REQUEST.
// NOT_CONTROLLER when no controller answered.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleCreatePartitions(c *conn, req *request) (kmsg.Response, error) {
	return c.b.cl.createPartitions(c.controllerPlane, req.msg.(*kmsg.CreatePartitionsRequest)), nil
}

// createPartitions handles CreatePartitions.
func (cl *cluster) createPartitions(forwarded bool, r *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	out, err := forward(cl, forwarded, r, func(r *kmsg.CreatePartitionsResponse) []int16 {
		return errorCodes(r.Topics, func(t kmsg.CreatePartitionsResponseTopic) int16 { return t.ErrorCode })
	})
	if err == nil {
		return out
	}
	out = r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var code int16
		var msg string
		switch {
		case !errors.Is(err, errLocalController):
			code, msg = unavailable(err)
		case seen[rt.Topic] > 1:
			code, msg = kerr.InvalidRequest.Code, "topic named more than once in the request"
		default:
			var assignment [][]int32
			for _, a := range rt.Assignment {
				assignment = append(assignment, a.Replicas)
			}
			if rt.Assignment != nil && assignment == nil {
				assignment = [][]int32{}
			}
			if _, cerr := cl.ctl.CreatePartitions(rt.Topic, rt.Count, r.ValidateOnly, assignment...); cerr != nil {
				code, msg = controller.ErrorCode(cerr), cerr.Error()
			}
		}
		if code != 0 {
			st.ErrorCode, st.ErrorMessage = code, &msg
		}
		out.Topics = append(out.Topics, st)
	}
	if !r.ValidateOnly {
		cl.waitApplied()
	}
	return out
}
