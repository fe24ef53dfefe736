package broker

// Metadata (key 3), versions 0-12.
//
// Behaviour: answered from this broker's view of the metadata image: the live (registered,
// unfenced) brokers, the cluster id, the active controller, and the requested topics (all when
// Topics is null, or empty at v0) in name order. Unknown topics are created through the
// controller when auto-creation is allowed by the request (v4+, always before) and by
// auto.create.topics.enable, with num.partitions partitions and default.replication.factor
// replicas; otherwise UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when asked by id, v10+).
// Names that are not legal topic names get INVALID_TOPIC_EXCEPTION. Partitions carry leader,
// leader epoch (v7+), replicas, ISR and offline replicas (fenced ones); a partition without a
// leader is LEADER_NOT_AVAILABLE. Differences from Kafka: a topic created by auto-creation is
// answered once this broker's image has it, so the first answer has a leader instead of
// LEADER_NOT_AVAILABLE; authorized operations are never computed (reported as not requested).

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

// notAuthorizedOps is Kafka's "authorized operations not requested" sentinel.
const notAuthorizedOps = -2147483648

func handleMetadata(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.MetadataRequest)
	b, cl := c.b, c.b.cl
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	resp.ClusterID = &b.cfg.ClusterID
	resp.ControllerID = cl.ctl.LeaderID()
	resp.AuthorizedOperations = notAuthorizedOps
	autoCreate := req.version < 4 || r.AllowAutoTopicCreation
	all := r.Topics == nil || (req.version == 0 && len(r.Topics) == 0)
	if all {
		img := cl.ctl.Image()
		for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
			resp.Topics = append(resp.Topics, topicEntry(img, img.Topics[name]))
		}
	} else {
		for _, rt := range r.Topics {
			resp.Topics = append(resp.Topics, cl.metadataTopic(rt, autoCreate))
		}
	}
	resp.Brokers = liveBrokers(cl.ctl.Image())
	return resp, nil
}

// liveBrokers lists the registered, unfenced brokers of img in id order, as Metadata (and
// DescribeCluster) answer them.
func liveBrokers(img *controller.Image) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, id := range img.LiveBrokers() {
		br := img.Brokers[id]
		e := kmsg.NewMetadataResponseBroker()
		e.NodeID, e.Host, e.Port = br.ID, br.Host, br.Port
		if br.Rack != "" {
			e.Rack = &br.Rack
		}
		out = append(out, e)
	}
	return out
}

// metadataTopic answers one requested topic, auto-creating it when allowed.
func (cl *cluster) metadataTopic(rt kmsg.MetadataRequestTopic, autoCreate bool) kmsg.MetadataResponseTopic {
	img := cl.ctl.Image()
	st := kmsg.NewMetadataResponseTopic()
	st.AuthorizedOperations = notAuthorizedOps
	if rt.Topic == nil {
		t := img.TopicByID(rt.TopicID)
		if t == nil {
			st.TopicID = rt.TopicID
			st.ErrorCode = kerr.UnknownTopicID.Code
			return st
		}
		return topicEntry(img, t)
	}
	name := *rt.Topic
	st.Topic = rt.Topic
	t := img.Topics[name]
	if t == nil {
		if err := validTopicName(name); err != nil {
			st.ErrorCode = kerr.InvalidTopicException.Code
			return st
		}
		if !autoCreate || !cl.b.cfg.propBool("auto.create.topics.enable") {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			return st
		}
		if kerrv := cl.createTopic(name, -1, -1, nil); kerrv != nil {
			st.ErrorCode = kerrv.Code
			return st
		}
		img = cl.ctl.Image()
		if t = img.Topics[name]; t == nil {
			st.ErrorCode = kerr.LeaderNotAvailable.Code
			return st
		}
	}
	return topicEntry(img, t)
}

// topicEntry describes topic t of img.
func topicEntry(img *controller.Image, t *controller.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.Name
	st.Topic = &name
	st.TopicID = t.ID
	st.IsInternal = t.Name == offsetsTopic
	st.AuthorizedOperations = notAuthorizedOps
	for i, p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = int32(i)
		sp.Leader, sp.LeaderEpoch = p.Leader, p.LeaderEpoch
		sp.Replicas, sp.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
		for _, r := range p.Replicas {
			if !img.Live(r) {
				sp.OfflineReplicas = append(sp.OfflineReplicas, r)
			}
		}
		if p.Leader == controller.NoLeader {
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
