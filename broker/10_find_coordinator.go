package broker

// FindCoordinator (key 10), versions 0-5.
//
// Behaviour: for key type 0 (groups) answers this broker, which coordinates every group on a
// single node; __consumer_offsets is created on the first request, as in Kafka. v4+ batches
// keys in CoordinatorKeys and answers each in Coordinators. Key type 1 (transactions) answers
// the leader of the transactional id's __transaction_state partition, creating the topic on
// the first request; an empty transactional id gets INVALID_REQUEST. Other key types get
// INVALID_REQUEST.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
			if b.cl != nil {
				id, host, port, err := b.cl.groupCoordinator(partitionFor(key, b.groups.numPartitions()))
				return id, host, port, err, ""
			}
			return b.cfg.NodeID, b.advertise.host, b.advertise.port, nil, ""
		case 1:
			if key == "" {
				return -1, "", -1, kerr.InvalidRequest, "the transactional id must not be empty"
			}
			if err := b.txns.ensureReady(); err != nil {
				return -1, "", -1, err, ""
			}
			if b.cl != nil {
				id, host, port, err := b.cl.txnCoordinator(b.txns.txnPartitionOf(key))
				return id, host, port, err, ""
			}
			return b.cfg.NodeID, b.advertise.host, b.advertise.port, nil, ""
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
