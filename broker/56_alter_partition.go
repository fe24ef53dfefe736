package broker

// AlterPartition (key 56), version 0-1, internal: not advertised to clients.
//
// Behaviour: a partition leader's ISR change (KIP-497), sent by the brokers of the cluster to
// the active controller. Each partition is decided by the controller (fencing by broker
// epoch, leader epoch and partition epoch); the answer carries the partition's new leader,
// leader epoch, ISR and partition epoch, or the error. A node that is not the active
// controller answers NOT_CONTROLLER.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleAlterPartition(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.AlterPartitionRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionResponse)
	cl := c.b.cl
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition = rp.Partition
			np, err := cl.ctl.AlterPartition(controller.AlterPartitionRequest{Topic: rt.Topic, Partition: rp.Partition,
				BrokerID: r.BrokerID, BrokerEpoch: r.BrokerEpoch, LeaderEpoch: rp.LeaderEpoch,
				PartitionEpoch: rp.PartitionEpoch, NewISR: rp.NewISR})
			if err != nil {
				sp.ErrorCode = controller.ErrorCode(err)
			} else {
				sp.LeaderID, sp.LeaderEpoch, sp.ISR, sp.PartitionEpoch = np.Leader, np.LeaderEpoch, np.ISR, np.PartitionEpoch
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
