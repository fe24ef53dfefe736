package broker

// CreateTopics (key 19), versions 2-7.
//
// Behaviour: decided by the active controller (forwarded there by other brokers, see
// admin.go): creates each topic with NumPartitions (-1: num.partitions) and ReplicationFactor
// (-1: default.replication.factor) placed over the live brokers, or an explicit
// ReplicaAssignment (partitions numbered 0..n-1 in order, the same number of replicas each,
// registered brokers only, at least one of them live), and the given configs (validated:
// unknown names and bad values are INVALID_CONFIG). ValidateOnly checks everything and creates
// nothing. A topic named twice in one request gets INVALID_REQUEST, and so does one with both a
// count or replication factor and an assignment. v5+ answers the partition count, replication
// factor and the topic's configs; v7 the topic id. The answer comes once this broker's image
// has the topic. Errors: TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION (also for a name that
// collides with an existing one once '.' and '_' are identified), INVALID_PARTITIONS,
// INVALID_REPLICATION_FACTOR (more replicas than live brokers), INVALID_REPLICA_ASSIGNMENT,
// NOT_CONTROLLER when no controller answered.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleCreateTopics(c *conn, req *request) (kmsg.Response, error) {
	return c.b.cl.createTopics(c.controllerPlane, req.msg.(*kmsg.CreateTopicsRequest)), nil
}

// createTopics handles CreateTopics; forwarded is set for a request that came over the
// controller listener (likewise for the other admin handlers).
func (cl *cluster) createTopics(forwarded bool, r *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	out, err := forward(cl, forwarded, r, func(r *kmsg.CreateTopicsResponse) []int16 {
		return errorCodes(r.Topics, func(t kmsg.CreateTopicsResponseTopic) int16 { return t.ErrorCode })
	})
	if err == nil {
		if !r.ValidateOnly {
			for _, t := range out.Topics {
				if t.ErrorCode == 0 {
					cl.waitForTopic(t.Topic, false, adminWait)
				}
			}
		}
		return out
	}
	out = r.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			st.ErrorMessage = &msg
		}
		switch {
		case !errors.Is(err, errLocalController):
			fail(unavailable(err))
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic named more than once in the request")
		case len(rt.ReplicaAssignment) > 0 && (rt.NumPartitions != -1 || rt.ReplicationFactor != -1):
			fail(kerr.InvalidRequest.Code, "both partition count / replication factor and a replica assignment were given")
		default:
			var t *controller.Topic
			var cerr error
			if len(rt.ReplicaAssignment) > 0 {
				var assignment [][]int32
				assignment, cerr = requestAssignment(rt.ReplicaAssignment)
				if cerr == nil {
					t, cerr = cl.ctl.CreateTopicAssigned(rt.Topic, assignment, requestConfigs(rt), r.ValidateOnly)
				}
			} else {
				t, cerr = cl.ctl.CreateTopic(rt.Topic, rt.NumPartitions, rt.ReplicationFactor, requestConfigs(rt), r.ValidateOnly)
			}
			if cerr != nil {
				fail(controller.ErrorCode(cerr), cerr.Error())
				break
			}
			st.TopicID = t.ID
			st.NumPartitions = int32(len(t.Partitions))
			if len(t.Partitions) > 0 {
				st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
			}
			st.Configs = cl.b.createdConfigs(&topic{name: t.Name, id: t.ID, configs: t.Configs})
		}
		out.Topics = append(out.Topics, st)
	}
	if !r.ValidateOnly {
		cl.waitApplied()
	}
	return out
}

// requestAssignment turns a CreateTopics replica assignment into one replica list per
// partition; the partitions must be numbered 0..n-1 in order.
func requestAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) ([][]int32, error) {
	out := make([][]int32, 0, len(as))
	for i, a := range as {
		if a.Partition != int32(i) {
			return nil, fmt.Errorf("%w: partitions in a replica assignment must be numbered 0..n-1 in order", kerr.InvalidReplicaAssignment)
		}
		out = append(out, a.Replicas)
	}
	return out, nil
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
