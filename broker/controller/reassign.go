package controller

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition reassignment as KRaft's controller does it (KIP-455):
//
//  1. AlterPartitionReassignments sets the replicas to the target followed by the replicas
//     being removed, and records which replicas are adding and removing. The ISR and the
//     leader stay; adding replicas become followers and catch up.
//  2. The leader adds each adding replica to the ISR once it has caught up (AlterPartition).
//  3. The partition change that leaves every target replica in the ISR also completes the
//     reassignment: the removing replicas leave the replicas and the ISR, adding and removing
//     are cleared, and a leader that was removed hands over to the first live in-sync target
//     replica. Removed replicas stop hosting the partition.
//
// A reassignment that only reorders or removes replicas whose targets are all in sync
// completes at once. A null target cancels the reassignment in flight: the adding replicas
// leave again and the removing ones stay.

// without returns s without the members of drop, in s's order.
func without(s, drop []int32) []int32 {
	return slices.DeleteFunc(slices.Clone(s), func(r int32) bool { return slices.Contains(drop, r) })
}

// containsAll reports whether every member of sub is in s.
func containsAll(s, sub []int32) bool {
	for _, r := range sub {
		if !slices.Contains(s, r) {
			return false
		}
	}
	return true
}

// buildChange returns the record taking partition idx of t from p to leader, ISR isr and
// assignment a, as KRaft's PartitionChangeBuilder does: it completes the reassignment when
// every target replica is in the ISR (removing replicas leave the replicas and the ISR), then
// elects a leader when leader is not a live member of the ISR (electLeader, unclean allowed
// when unclean; an unclean election's ISR may complete the reassignment in turn), bumps the
// leader epoch when the leader changes or a replica is removed (so removed replicas are
// fenced), and the partition epoch on any change. It returns nil when nothing changes.
func buildChange(img *Image, t *Topic, idx int32, p *Partition, leader int32, isr []int32, a AssignmentChange, unclean bool) *Record {
	replicas, adding, removing := a.Replicas, a.Adding, a.Removing
	complete := func() {
		if len(adding)+len(removing) == 0 {
			return
		}
		target, targetISR := without(replicas, removing), without(isr, removing)
		if len(target) > 0 && len(targetISR) > 0 && containsAll(targetISR, target) {
			replicas, isr, adding, removing = target, targetISR, nil, nil
		}
	}
	complete()
	wasUnclean := false
	if leader == NoLeader || !img.Live(leader) || !slices.Contains(isr, leader) {
		leader, isr, wasUnclean = electLeader(replicas, isr, img.Live, unclean)
		complete()
	}
	assignChanged := !slices.Equal(replicas, p.Replicas) || !slices.Equal(adding, p.AddingReplicas) || !slices.Equal(removing, p.RemovingReplicas)
	if leader == p.Leader && slices.Equal(isr, p.ISR) && !assignChanged {
		return nil
	}
	cp := &ChangePartitionRecord{Topic: t.Name, ID: t.ID, Partition: idx, Leader: leader, ISR: slices.Clone(isr),
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch + 1, Unclean: wasUnclean}
	if leader != p.Leader || !containsAll(replicas, p.Replicas) {
		cp.LeaderEpoch++
	}
	if assignChanged {
		cp.Assignment = &AssignmentChange{Replicas: slices.Clone(replicas), Adding: slices.Clone(adding), Removing: slices.Clone(removing)}
	}
	return &Record{Type: TypeChangePartition, ChangePartition: cp}
}

// currentAssignment is p's replicas and reassignment state as an AssignmentChange.
func currentAssignment(p *Partition) AssignmentChange {
	return AssignmentChange{Replicas: p.Replicas, Adding: p.AddingReplicas, Removing: p.RemovingReplicas}
}

// reassignRecord decides one partition of an AlterPartitionReassignments request: target is
// the new replica list, or nil to cancel the reassignment in flight. With allowRFChange false
// (KIP-860) a target whose size differs from the replication factor before any reassignment
// is INVALID_REPLICATION_FACTOR. It returns nil when nothing changes (the target is already
// the replica list). Errors, as Kafka names them: UNKNOWN_TOPIC_OR_PARTITION;
// INVALID_REPLICA_ASSIGNMENT for an empty target, a broker named twice or one that is not
// registered, and for a cancellation that would need an unclean election while the topic
// does not allow one; NO_REASSIGNMENT_IN_PROGRESS for cancelling when none is in flight.
func reassignRecord(img *Image, pol policy, topic string, idx int32, target []int32, allowRFChange bool) (*Record, error) {
	t := img.Topics[topic]
	p := img.Partition(topic, idx)
	if t == nil || p == nil {
		return nil, errorf(kerr.UnknownTopicOrPartition, "partition %s-%d does not exist", topic, idx)
	}
	if target == nil {
		return cancelRecord(img, pol, t, idx, p)
	}
	if len(target) == 0 {
		return nil, errorf(kerr.InvalidReplicaAssignment, "%s-%d: the target replica list is empty", topic, idx)
	}
	for i, r := range target {
		if slices.Contains(target[:i], r) {
			return nil, errorf(kerr.InvalidReplicaAssignment, "%s-%d: the target %v names broker %d twice", topic, idx, target, r)
		}
		if img.Brokers[r] == nil {
			return nil, errorf(kerr.InvalidReplicaAssignment, "%s-%d: the target %v names broker %d, which is not registered", topic, idx, target, r)
		}
	}
	if rf := len(p.OriginalReplicas()); !allowRFChange && len(target) != rf {
		return nil, errorf(kerr.InvalidReplicationFactor, "%s-%d: the target %v changes the replication factor %d, which the request does not allow", topic, idx, target, rf)
	}
	removing := without(p.Replicas, target)
	slices.Sort(removing)
	adding := without(target, p.Replicas)
	for _, r := range p.AddingReplicas {
		if slices.Contains(target, r) && !slices.Contains(adding, r) {
			adding = append(adding, r) // still catching up from the reassignment this replaces
		}
	}
	slices.Sort(adding)
	a := AssignmentChange{Replicas: append(slices.Clone(target), removing...), Adding: adding, Removing: removing}
	// An offline partition of a topic that allows unclean election gets a leader here, as the
	// next reconcile would give it.
	return buildChange(img, t, idx, p, p.Leader, p.ISR, a, pol.unclean(img, t)), nil
}

// cancelRecord reverts the reassignment in flight of partition idx of t: the replicas and
// ISR lose the adding replicas. When only adding replicas were in sync, the first original
// replica becomes the ISR, an unclean election that the topic must allow.
func cancelRecord(img *Image, pol policy, t *Topic, idx int32, p *Partition) (*Record, error) {
	if !p.Reassigning() {
		return nil, errorf(kerr.NoReassignmentInProgress, "%s-%d has no reassignment in flight", t.Name, idx)
	}
	replicas := p.OriginalReplicas()
	isr := without(p.ISR, p.AddingReplicas)
	forced := false
	if len(isr) == 0 {
		if !pol.unclean(img, t) {
			return nil, errorf(kerr.InvalidReplicaAssignment, "%s-%d: reverting the reassignment would require an unclean leader election", t.Name, idx)
		}
		isr, forced = []int32{replicas[0]}, true
	}
	r := buildChange(img, t, idx, p, p.Leader, isr, AssignmentChange{Replicas: replicas}, pol.unclean(img, t))
	r.ChangePartition.Unclean = r.ChangePartition.Unclean || forced
	return r, nil
}

// Reassignment is one partition's reassignment in flight, as ListPartitionReassignments
// reports it.
type Reassignment struct {
	Topic     string
	Partition int32
	// Replicas is the target followed by the removing replicas; Adding and Removing as in
	// Partition.
	Replicas, Adding, Removing []int32
}

// Reassignments lists the reassignments in flight in img, by topic name and partition, of
// the partitions in parts (topic → partitions; nil: every partition of every topic).
// Unknown topics and partitions, and partitions not being reassigned, are left out.
func (img *Image) Reassignments(parts map[string][]int32) []Reassignment {
	var out []Reassignment
	for _, name := range img.sortedTopicNames() {
		t := img.Topics[name]
		want, listed := parts[name]
		if parts != nil && !listed {
			continue
		}
		for i, p := range t.Partitions {
			if !p.Reassigning() || (parts != nil && !slices.Contains(want, int32(i))) {
				continue
			}
			out = append(out, Reassignment{Topic: name, Partition: int32(i), Replicas: slices.Clone(p.Replicas),
				Adding: slices.Clone(p.AddingReplicas), Removing: slices.Clone(p.RemovingReplicas)})
		}
	}
	return out
}
