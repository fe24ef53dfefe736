package broker

// Metadata, DescribeCluster and FindCoordinator answers in cluster mode, from the metadata
// image: the unfenced brokers, the active controller, and each partition's leader, leader
// epoch, replicas, ISR and offline replicas (fenced ones). A partition without a leader is
// LEADER_NOT_AVAILABLE.

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

// clusterMetadata answers Metadata from the image.
func (cl *cluster) metadata(r *kmsg.MetadataRequest, version int16) *kmsg.MetadataResponse {
	b := cl.b
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	resp.ClusterID = &b.cfg.ClusterID
	resp.ControllerID = cl.ctl.LeaderID()
	resp.AuthorizedOperations = notAuthorizedOps
	autoCreate := version < 4 || r.AllowAutoTopicCreation
	all := r.Topics == nil || (version == 0 && len(r.Topics) == 0)
	var topics []kmsg.MetadataResponseTopic
	if all {
		img := cl.ctl.Image()
		for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
			topics = append(topics, topicEntry(img, img.Topics[name]))
		}
	} else {
		for _, rt := range r.Topics {
			img := cl.ctl.Image()
			st := kmsg.NewMetadataResponseTopic()
			st.AuthorizedOperations = notAuthorizedOps
			if rt.Topic == nil {
				t := img.TopicByID(rt.TopicID)
				if t == nil {
					st.TopicID = rt.TopicID
					st.ErrorCode = kerr.UnknownTopicID.Code
					topics = append(topics, st)
					continue
				}
				topics = append(topics, topicEntry(img, t))
				continue
			}
			name := *rt.Topic
			st.Topic = rt.Topic
			t := img.Topics[name]
			if t == nil {
				if err := validTopicName(name); err != nil {
					st.ErrorCode = kerr.InvalidTopicException.Code
					topics = append(topics, st)
					continue
				}
				if !autoCreate || !b.cfg.propBool("auto.create.topics.enable") {
					st.ErrorCode = kerr.UnknownTopicOrPartition.Code
					topics = append(topics, st)
					continue
				}
				if kerrv := cl.createTopic(name, -1, -1, nil); kerrv != nil {
					st.ErrorCode = kerrv.Code
					topics = append(topics, st)
					continue
				}
				img = cl.ctl.Image()
				if t = img.Topics[name]; t == nil {
					st.ErrorCode = kerr.LeaderNotAvailable.Code
					topics = append(topics, st)
					continue
				}
			}
			topics = append(topics, topicEntry(img, t))
		}
	}
	img := cl.ctl.Image()
	for _, id := range img.LiveBrokers() {
		br := img.Brokers[id]
		e := kmsg.NewMetadataResponseBroker()
		e.NodeID, e.Host, e.Port = br.ID, br.Host, br.Port
		if br.Rack != "" {
			e.Rack = &br.Rack
		}
		resp.Brokers = append(resp.Brokers, e)
	}
	resp.Topics = topics
	return resp
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

// describeCluster answers DescribeCluster from the image.
func (cl *cluster) describeCluster(resp *kmsg.DescribeClusterResponse) {
	resp.ControllerID = cl.ctl.LeaderID()
	img := cl.ctl.Image()
	for _, id := range img.LiveBrokers() {
		br := img.Brokers[id]
		e := kmsg.NewDescribeClusterResponseBroker()
		e.NodeID, e.Host, e.Port = br.ID, br.Host, br.Port
		if br.Rack != "" {
			e.Rack = &br.Rack
		}
		resp.Brokers = append(resp.Brokers, e)
	}
}

// groupCoordinator returns the broker leading the __consumer_offsets partition of a group.
func (cl *cluster) groupCoordinator(partition int32) (int32, string, int32, *kerr.Error) {
	img := cl.ctl.Image()
	p := img.Partition(offsetsTopic, partition)
	if p == nil || p.Leader == controller.NoLeader || img.Brokers[p.Leader] == nil {
		return -1, "", -1, kerr.CoordinatorNotAvailable
	}
	br := img.Brokers[p.Leader]
	return br.ID, br.Host, br.Port, nil
}

// topicForConfigs returns a topic value carrying name's config overrides, for DescribeConfigs,
// or nil when the topic does not exist.
func (cl *cluster) topicForConfigs(name string) *topic {
	t := cl.ctl.Image().Topics[name]
	if t == nil {
		return nil
	}
	return &topic{name: t.Name, id: t.ID, configs: t.Configs}
}

// hostedError is the error for a partition this broker does not host: NOT_LEADER_OR_FOLLOWER
// when it exists in the cluster, UNKNOWN_TOPIC_OR_PARTITION otherwise.
func (cl *cluster) hostedError(topicName string, index int32) *kerr.Error {
	if cl.ctl.Image().Partition(topicName, index) != nil {
		return kerr.NotLeaderForPartition
	}
	return kerr.UnknownTopicOrPartition
}
