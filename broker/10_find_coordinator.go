package broker

// FindCoordinator (key 10), versions 0-5.
//
// Behaviour: for key type 0 (groups) answers the leader of the group's __consumer_offsets
// partition (COORDINATOR_NOT_AVAILABLE while it has none); __consumer_offsets is created on
// the first request, as in Kafka, with offsets.topic.replication.factor replicas capped at the
// number of live brokers. v4+ batches keys in CoordinatorKeys and answers each in
// Coordinators. Key type 1 (transactions) answers the leader of the transactional id's
// __transaction_state partition, creating the topic on the first request likewise; an empty
// transactional id gets INVALID_REQUEST. Other key types get INVALID_REQUEST.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleFindCoordinator(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	b := c.b
	answer := func(key string) (int32, string, int32, *kerr.Error, string) {
		switch r.CoordinatorType {
		case 0:
			if key == "" {
				return -1, "", -1, kerr.InvalidGroupID, "the group id must not be empty"
			}
			if err := b.groups.ensureReady(); err != nil {
				return -1, "", -1, err, ""
			}
			id, host, port, err := b.cl.coordinatorOf(offsetsTopic, partitionFor(key, b.groups.numPartitions()))
			return id, host, port, err, ""
		case 1:
			if key == "" {
				return -1, "", -1, kerr.InvalidRequest, "the transactional id must not be empty"
			}
			if err := b.txns.ensureReady(); err != nil {
				return -1, "", -1, err, ""
			}
			id, host, port, err := b.cl.coordinatorOf(txnStateTopic, b.txns.txnPartitionOf(key))
			return id, host, port, err, ""
		default:
			return -1, "", -1, kerr.InvalidRequest, "unknown coordinator key type"
		}
	}
	if req.version >= 4 {
		for _, key := range r.CoordinatorKeys {
			co := kmsg.NewFindCoordinatorResponseCoordinator()
			co.Key = key
			var err *kerr.Error
			var msg string
			co.NodeID, co.Host, co.Port, err, msg = answer(key)
			if err != nil {
				co.ErrorCode = err.Code
				if msg != "" {
					co.ErrorMessage = &msg
				}
			}
			resp.Coordinators = append(resp.Coordinators, co)
		}
		return resp, nil
	}
	var err *kerr.Error
	var msg string
	resp.NodeID, resp.Host, resp.Port, err, msg = answer(r.CoordinatorKey)
	if err != nil {
		resp.ErrorCode = err.Code
		if msg != "" && req.version >= 1 {
			resp.ErrorMessage = &msg
		}
	}
	return resp, nil
}

// coordinatorOf returns the broker leading partition p of an internal topic, the coordinator
// of the groups or transactional ids that map to it.
func (cl *cluster) coordinatorOf(topic string, p int32) (int32, string, int32, *kerr.Error) {
	img := cl.ctl.Image()
	ip := img.Partition(topic, p)
	if ip == nil || ip.Leader == controller.NoLeader || img.Brokers[ip.Leader] == nil {
		return -1, "", -1, kerr.CoordinatorNotAvailable
	}
	br := img.Brokers[ip.Leader]
	return br.ID, br.Host, br.Port, nil
}
