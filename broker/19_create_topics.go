package broker

// CreateTopics (key 19), versions 2-7.
//
// Behaviour: creates each topic with NumPartitions (-1: num.partitions) and ReplicationFactor
// (-1: default.replication.factor) or an explicit ReplicaAssignment, and the given configs
// (validated: unknown names and bad values are INVALID_CONFIG). ValidateOnly checks everything
// and creates nothing. A topic named twice in one request gets INVALID_REQUEST. v5+ answers
// the partition count, replication factor and the topic's configs; v7 the topic id. Errors:
// TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
// INVALID_REPLICATION_FACTOR (a single node holds one replica), INVALID_REPLICA_ASSIGNMENT.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreateTopics(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.CreateTopicsRequest)
	if c.b.cl != nil {
		return c.b.cl.createTopics(c.controllerPlane, r), nil
	}
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			st.ErrorMessage = &msg
		}
		if seen[rt.Topic] > 1 {
			fail(kerr.InvalidRequest, "topic named more than once in the request")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		n, rf := rt.NumPartitions, rt.ReplicationFactor
		if len(rt.ReplicaAssignment) > 0 {
			if n != -1 || rf != -1 {
				fail(kerr.InvalidRequest, "both partition count / replication factor and a replica assignment were given")
				resp.Topics = append(resp.Topics, st)
				continue
			}
			if msg := c.b.checkAssignment(rt.ReplicaAssignment); msg != "" {
				fail(kerr.InvalidReplicaAssignment, msg)
				resp.Topics = append(resp.Topics, st)
				continue
			}
			n, rf = int32(len(rt.ReplicaAssignment)), int16(len(rt.ReplicaAssignment[0].Replicas))
		}
		t, terr := c.b.createTopic(rt.Topic, n, rf, requestConfigs(rt), r.ValidateOnly)
		if terr != nil {
			fail(terr.err, terr.msg)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.id
		st.NumPartitions = int32(len(t.partitions))
		st.ReplicationFactor = 1
		st.Configs = c.b.createdConfigs(t)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// checkAssignment checks an explicit replica assignment: every partition numbered 0..n-1 in
// order, the same replication factor, distinct replicas, and only this broker.
func (b *Broker) checkAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) string {
	for i, a := range as {
		if a.Partition != int32(i) {
			return "partitions in a replica assignment must be numbered 0..n-1 in order"
		}
		if len(a.Replicas) != len(as[0].Replicas) || len(a.Replicas) == 0 {
			return "every partition must have the same, non-zero number of replicas"
		}
		for _, r := range a.Replicas {
			if r != b.cfg.NodeID {
				return "replica assignment names a broker that does not exist"
			}
		}
	}
	return ""
}

// requestConfigs returns a CreateTopics topic's config overrides (null values left out).
func requestConfigs(rt kmsg.CreateTopicsRequestTopic) map[string]string {
	configs := map[string]string{}
	for _, cfg := range rt.Configs {
		if cfg.Value != nil {
			configs[cfg.Name] = *cfg.Value
		}
	}
	return configs
}

// createdConfigs lists a created topic's effective configs for the CreateTopics response.
func (b *Broker) createdConfigs(t *topic) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	for _, e := range b.describeTopicConfigs(t, nil, false, false) {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.IsSensitive = e.Name, e.Value, e.ReadOnly, int8(e.Source), e.IsSensitive
		out = append(out, rc)
	}
	return out
}
