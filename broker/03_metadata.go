package broker

// Metadata (key 3), versions 0-12.
//
// Behaviour: lists this broker, the cluster id and controller, and the requested topics (all
// when Topics is null, or empty at v0). Unknown topics are created when auto-creation is
// allowed by the request (v4+, always before) and by auto.create.topics.enable, with
// num.partitions partitions; otherwise UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when asked
// by id, v10+). Names that are not legal topic names get INVALID_TOPIC_EXCEPTION. Partitions
// carry leader, leader epoch (v7+), replicas and ISR. Differences from Kafka: a topic created
// by auto-creation is ready at once, so the first answer has a leader instead of
// LEADER_NOT_AVAILABLE; authorized operations are never computed (reported as not requested).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// notAuthorizedOps is Kafka's "authorized operations not requested" sentinel.
const notAuthorizedOps = -2147483648

func handleMetadata(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.MetadataRequest)
	b := c.b
	if b.cl != nil {
		return b.cl.metadata(r, req.version), nil
	}
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{b.brokerEntry()}
	resp.ClusterID = &b.cfg.ClusterID
	resp.ControllerID = b.cfg.NodeID
	resp.AuthorizedOperations = notAuthorizedOps
	autoCreate := req.version < 4 || r.AllowAutoTopicCreation
	all := r.Topics == nil || (req.version == 0 && len(r.Topics) == 0)
	if all {
		b.mu.RLock()
		names := sortedKeys(b.topics)
		b.mu.RUnlock()
		for _, name := range names {
			b.mu.RLock()
			t := b.topics[name]
			b.mu.RUnlock()
			if t != nil {
				resp.Topics = append(resp.Topics, b.topicMetadata(t))
			}
		}
		return resp, nil
	}
	for _, rt := range r.Topics {
		var t *topic
		var terr *createTopicError
		if rt.Topic == nil {
			b.mu.RLock()
			t = b.topicsByID[rt.TopicID]
			b.mu.RUnlock()
			if t == nil {
				st := kmsg.NewMetadataResponseTopic()
				st.TopicID = rt.TopicID
				st.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
		} else {
			t, terr = b.topicByName(*rt.Topic, autoCreate)
		}
		if terr != nil {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = terr.err.Code
			st.AuthorizedOperations = notAuthorizedOps
			resp.Topics = append(resp.Topics, st)
			continue
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(t))
	}
	return resp, nil
}

// brokerEntry is this broker as Metadata lists it.
func (b *Broker) brokerEntry() kmsg.MetadataResponseBroker {
	e := kmsg.NewMetadataResponseBroker()
	e.NodeID = b.cfg.NodeID
	e.Host = b.advertise.host
	e.Port = b.advertise.port
	return e
}

// topicMetadata describes t and its partitions.
func (b *Broker) topicMetadata(t *topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.name
	st.Topic = &name
	st.TopicID = t.id
	st.IsInternal = t.name == offsetsTopic
	st.AuthorizedOperations = notAuthorizedOps
	b.mu.RLock()
	parts := t.partitions
	b.mu.RUnlock()
	for _, p := range parts {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = p.index
		sp.Leader, sp.LeaderEpoch, sp.Replicas, sp.ISR = p.state()
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
