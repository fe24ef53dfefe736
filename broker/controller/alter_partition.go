package controller

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// AlterPartitionRequest is a partition leader's proposal to change its ISR (KIP-497's
// AlterPartition, v1+ semantics with partition epochs).
type AlterPartitionRequest struct {
	// Topic names the partition's topic. TopicID, when non-zero, must match it.
	Topic   string
	TopicID TopicID
	// Partition is the partition index.
	Partition int32
	// BrokerID is the proposing leader; BrokerEpoch its registration epoch, or -1 to skip
	// the STALE_BROKER_EPOCH check.
	BrokerID    int32
	BrokerEpoch int64
	// LeaderEpoch and PartitionEpoch are the leader's view of the partition.
	LeaderEpoch    int32
	PartitionEpoch int32
	// NewISR is the proposed ISR; it must contain the leader.
	NewISR []int32
}

// alterPartitionRecord validates req against img and returns the ChangePartition record that
// applies it (new ISR, partition epoch + 1, leader and leader epoch unchanged), or nil when
// the ISR is already as proposed, with the partition as it is afterwards. An ISR that holds
// every target replica of a reassignment in flight completes it in the same record (see
// buildChange), which may remove replicas and move leadership. Errors, checked in this order, as Kafka names them:
//
//   - UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID: no such partition;
//   - STALE_BROKER_EPOCH: the proposer's broker epoch is not its current registration;
//   - FENCED_LEADER_EPOCH: the leader epoch is not the current one (the proposer was deposed
//     or has not yet learned of its leadership);
//   - NOT_LEADER_OR_FOLLOWER: the proposer is not the leader;
//   - INVALID_UPDATE_VERSION: the partition epoch is stale (another change came first);
//   - INVALID_REQUEST: empty ISR, duplicates, non-replicas, or an ISR without the leader;
//   - INELIGIBLE_REPLICA: the proposal adds a broker that is fenced or not registered.
func alterPartitionRecord(img *Image, req AlterPartitionRequest) (*Record, *Partition, error) {
	t := img.Topics[req.Topic]
	if t == nil {
		if req.TopicID != (TopicID{}) {
			return nil, nil, errorf(kerr.UnknownTopicID, "topic id %s does not exist", req.TopicID)
		}
		return nil, nil, errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", req.Topic)
	}
	if req.TopicID != (TopicID{}) && req.TopicID != t.ID {
		return nil, nil, errorf(kerr.UnknownTopicID, "topic %q has id %s, not %s", req.Topic, t.ID, req.TopicID)
	}
	p := img.Partition(req.Topic, req.Partition)
	if p == nil {
		return nil, nil, errorf(kerr.UnknownTopicOrPartition, "partition %s-%d does not exist", req.Topic, req.Partition)
	}
	if req.BrokerEpoch >= 0 {
		if b := img.Brokers[req.BrokerID]; b == nil || b.Epoch != req.BrokerEpoch {
			return nil, nil, errorf(kerr.StaleBrokerEpoch, "broker %d epoch %d is not its current registration", req.BrokerID, req.BrokerEpoch)
		}
	}
	if req.LeaderEpoch != p.LeaderEpoch {
		return nil, nil, errorf(kerr.FencedLeaderEpoch, "%s-%d: leader epoch %d, current %d", req.Topic, req.Partition, req.LeaderEpoch, p.LeaderEpoch)
	}
	if req.BrokerID != p.Leader {
		return nil, nil, errorf(kerr.NotLeaderForPartition, "%s-%d: broker %d is not the leader (leader %d)", req.Topic, req.Partition, req.BrokerID, p.Leader)
	}
	if req.PartitionEpoch != p.PartitionEpoch {
		return nil, nil, errorf(kerr.InvalidUpdateVersion, "%s-%d: partition epoch %d, current %d", req.Topic, req.Partition, req.PartitionEpoch, p.PartitionEpoch)
	}
	if len(req.NewISR) == 0 || !slices.Contains(req.NewISR, p.Leader) {
		return nil, nil, errorf(kerr.InvalidRequest, "%s-%d: new ISR %v must contain the leader %d", req.Topic, req.Partition, req.NewISR, p.Leader)
	}
	for i, id := range req.NewISR {
		if slices.Contains(req.NewISR[:i], id) {
			return nil, nil, errorf(kerr.InvalidRequest, "%s-%d: new ISR %v repeats %d", req.Topic, req.Partition, req.NewISR, id)
		}
		if !slices.Contains(p.Replicas, id) {
			return nil, nil, errorf(kerr.InvalidRequest, "%s-%d: %d in new ISR %v is not a replica of %v", req.Topic, req.Partition, id, req.NewISR, p.Replicas)
		}
	}
	for _, id := range req.NewISR {
		if !p.InISR(id) && !img.Live(id) {
			return nil, nil, errorf(kerr.IneligibleReplica, "%s-%d: broker %d is fenced or not registered and cannot join the ISR", req.Topic, req.Partition, id)
		}
	}
	r := buildChange(img, t, req.Partition, p, p.Leader, req.NewISR, currentAssignment(p), false)
	if r == nil {
		return nil, p, nil
	}
	return r, changed(p, r.ChangePartition), nil
}

// changed returns p as the record cp leaves it.
func changed(p *Partition, cp *ChangePartitionRecord) *Partition {
	np := p.clone()
	np.Leader, np.ISR, np.LeaderEpoch, np.PartitionEpoch = cp.Leader, slices.Clone(cp.ISR), cp.LeaderEpoch, cp.PartitionEpoch
	if a := cp.Assignment; a != nil {
		np.Replicas, np.AddingReplicas, np.RemovingReplicas = slices.Clone(a.Replicas), slices.Clone(a.Adding), slices.Clone(a.Removing)
	}
	return np
}
