package broker

// CreatePartitions (key 37), versions 0-3.
//
// Behaviour: raises a topic's partition count to Count. A count not above the current one is
// INVALID_PARTITIONS; an explicit Assignment may name only this broker
// (INVALID_REPLICA_ASSIGNMENT otherwise); ValidateOnly changes nothing. A topic named twice is
// INVALID_REQUEST.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreatePartitions(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.CreatePartitionsRequest)
	if c.b.cl != nil {
		return c.b.cl.createPartitions(c.controllerPlane, r), nil
	}
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if e, msg := c.b.createPartitions(rt, seen[rt.Topic] > 1, r.ValidateOnly); e != nil {
			st.ErrorCode = e.Code
			st.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) createPartitions(rt kmsg.CreatePartitionsRequestTopic, dup, validateOnly bool) (*kerr.Error, string) {
	if dup {
		return kerr.InvalidRequest, "topic named more than once in the request"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[rt.Topic]
	if t == nil {
		return kerr.UnknownTopicOrPartition, fmt.Sprintf("topic %q does not exist", rt.Topic)
	}
	cur := int32(len(t.partitions))
	if rt.Count <= cur {
		return kerr.InvalidPartitions, fmt.Sprintf("topic has %d partitions; the new count %d must be larger", cur, rt.Count)
	}
	if rt.Count > 100000 {
		return kerr.InvalidPartitions, fmt.Sprintf("partition count %d is over the limit of 100000", rt.Count)
	}
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != rt.Count-cur {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("%d assignments for %d new partitions", len(rt.Assignment), rt.Count-cur)
		}
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
				return kerr.InvalidReplicaAssignment, "replica assignment names a broker that does not exist or more than one replica"
			}
		}
	}
	if validateOnly {
		return nil, ""
	}
	if err := b.addPartitions(t, rt.Count); err != nil {
		return kerr.KafkaStorageError, err.Error()
	}
	b.metrics.partitions.Add(float64(rt.Count - cur))
	if err := b.saveTopics(); err != nil {
		b.log.Error("persist topics", "err", err)
	}
	return nil, ""
}
