package broker

// ListPartitionReassignments (key 46), version 0.
//
// Behaviour: answered by the active controller (forwarded there by other brokers, see
// admin.go, as KRaft brokers forward it) from its image: every partition with a reassignment
// in flight (null Topics), or those of the partitions asked for, with its replicas (the
// target followed by the removing replicas), adding and removing replicas. Unknown topics
// and partitions, and partitions not being reassigned, are left out. NOT_CONTROLLER when no
// controller answered. What differs from Kafka: nothing a client can observe.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListPartitionReassignments(c *conn, req *request) (kmsg.Response, error) {
	return c.b.cl.listReassignments(c.controllerPlane, req.msg.(*kmsg.ListPartitionReassignmentsRequest)), nil
}

// listReassignments handles ListPartitionReassignments.
func (cl *cluster) listReassignments(forwarded bool, r *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse {
	out, err := forward(cl, forwarded, r, func(r *kmsg.ListPartitionReassignmentsResponse) []int16 { return []int16{r.ErrorCode} })
	if err == nil {
		return out
	}
	out = r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !errors.Is(err, errLocalController) {
		code, msg := unavailable(err)
		out.ErrorCode, out.ErrorMessage = code, &msg
		return out
	}
	var parts map[string][]int32
	if r.Topics != nil {
		parts = map[string][]int32{}
		for _, rt := range r.Topics {
			parts[rt.Topic] = append(parts[rt.Topic], rt.Partitions...)
		}
	}
	for _, ra := range cl.ctl.Image().Reassignments(parts) {
		if len(out.Topics) == 0 || out.Topics[len(out.Topics)-1].Topic != ra.Topic {
			t := kmsg.NewListPartitionReassignmentsResponseTopic()
			t.Topic = ra.Topic
			out.Topics = append(out.Topics, t)
		}
		p := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		p.Partition, p.Replicas, p.AddingReplicas, p.RemovingReplicas = ra.Partition, ra.Replicas, ra.Adding, ra.Removing
		if p.AddingReplicas == nil {
			p.AddingReplicas = []int32{}
		}
		if p.RemovingReplicas == nil {
			p.RemovingReplicas = []int32{}
		}
		last := &out.Topics[len(out.Topics)-1]
		last.Partitions = append(last.Partitions, p)
	}
	return out
}
