package broker

// AlterPartitionReassignments (key 45), versions 0-1.
//
// Behaviour: decided by the active controller (forwarded there by other brokers, see
// admin.go), as KRaft's controller reassigns partitions (KIP-455; the stages are in
// broker/controller/reassign.go). A replica list starts a reassignment (or replaces the one
// in flight): the replicas become the target followed by the removing replicas, adding
// replicas open the partition, fetch from the leader as followers and join the ISR once
// caught up; the change that puts every target replica in the ISR completes it, removing the
// others from the replicas and ISR and moving leadership to the first live in-sync target
// replica if the leader was removed. A removed replica stops hosting the partition and
// deletes its log (see applyImage). A reassignment whose targets are already all in sync
// completes at once. A null replica list cancels the reassignment in flight: the adding
// replicas leave, the original ones stay (INVALID_REPLICA_ASSIGNMENT when that would need an
// unclean election the topic does not allow). Errors per partition:
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty list, a broker twice, a
// broker that is not registered), NO_REASSIGNMENT_IN_PROGRESS (cancelling none), and with
// AllowReplicationFactorChange false (v1, KIP-860) INVALID_REPLICATION_FACTOR for a list
// whose size differs from the replication factor before any reassignment in flight. The
// accepted partitions commit together; the answer comes once they are in this broker's image.
// NOT_CONTROLLER when no controller answered. What differs from Kafka: replacing a
// reassignment in flight keeps the earlier adding replicas that stay in the target as adding
// (KRaft keeps the earlier adding list only when the new one is empty).

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleAlterPartitionReassignments(c *conn, req *request) (kmsg.Response, error) {
	return c.b.cl.alterReassignments(c.controllerPlane, req.msg.(*kmsg.AlterPartitionAssignmentsRequest)), nil
}

// alterReassignments handles AlterPartitionReassignments.
func (cl *cluster) alterReassignments(forwarded bool, r *kmsg.AlterPartitionAssignmentsRequest) *kmsg.AlterPartitionAssignmentsResponse {
	out, err := forward(cl, forwarded, r, func(r *kmsg.AlterPartitionAssignmentsResponse) []int16 {
		codes := []int16{r.ErrorCode}
		for _, t := range r.Topics {
			codes = append(codes, errorCodes(t.Partitions, func(p kmsg.AlterPartitionAssignmentsResponseTopicPartition) int16 { return p.ErrorCode })...)
		}
		return codes
	})
	if err == nil {
		return out
	}
	out = r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	out.AllowReplicationFactorChange = r.AllowReplicationFactorChange
	var reqs []controller.ReassignRequest
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			reqs = append(reqs, controller.ReassignRequest{Topic: rt.Topic, Partition: rp.Partition, Replicas: rp.Replicas})
		}
	}
	var res []controller.PartitionResult
	var code int16
	var msg string
	if !errors.Is(err, errLocalController) {
		code, msg = unavailable(err)
	} else if res, err = cl.ctl.AlterPartitionReassignments(reqs, r.Version < 1 || r.AllowReplicationFactorChange); err != nil {
		code, msg = controller.ErrorCode(err), err.Error()
	} else {
		cl.waitApplied()
	}
	if code != 0 {
		out.ErrorCode, out.ErrorMessage = code, &msg
		res = res[:0]
		for _, rq := range reqs {
			res = append(res, controller.PartitionResult{Topic: rq.Topic, Partition: rq.Partition, Err: kafkaError(code)})
		}
	}
	for _, pr := range res {
		if len(out.Topics) == 0 || out.Topics[len(out.Topics)-1].Topic != pr.Topic {
			t := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			t.Topic = pr.Topic
			out.Topics = append(out.Topics, t)
		}
		p := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
		p.Partition, p.ErrorCode = pr.Partition, controller.ErrorCode(pr.Err)
		if pr.Err != nil {
			msg := pr.Err.Error()
			p.ErrorMessage = &msg
		}
		last := &out.Topics[len(out.Topics)-1]
		last.Partitions = append(last.Partitions, p)
	}
	return out
}
