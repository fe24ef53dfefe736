package controller

import (
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// UncleanLeaderElectionConfig is the topic config (and broker default) that lets an
// out-of-sync replica become leader when no in-sync replica is alive.
const UncleanLeaderElectionConfig = "unclean.leader.election.enable"

// policy carries the broker-level defaults the pure decisions need.
type policy struct {
	// uncleanDefault is the static broker-level unclean.leader.election.enable.
	uncleanDefault bool
	// node is the deciding controller's node id, whose dynamic broker configs apply.
	node int32
}

// unclean reports whether unclean leader election is enabled for topic t in img, as KRaft's
// controller resolves it: the topic's override, else the deciding node's dynamic broker
// config, else the cluster-wide dynamic default, else the static setting.
func (pol policy) unclean(img *Image, t *Topic) bool {
	v, ok := t.Configs[UncleanLeaderElectionConfig]
	if !ok {
		v, ok = img.BrokerConfig(pol.node, UncleanLeaderElectionConfig)
	}
	if !ok {
		return pol.uncleanDefault
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// electLeader chooses a leader for a partition whose leader is gone: the first live in-sync
// replica in replica order, keeping the ISR; failing that, with unclean election on, the first
// live replica in replica order with ISR [it]; failing that, NoLeader with the ISR kept as the
// last known set.
func electLeader(replicas, isr []int32, live func(int32) bool, unclean bool) (leader int32, newISR []int32, wasUnclean bool) {
	for _, r := range replicas {
		if live(r) && slices.Contains(isr, r) {
			return r, isr, false
		}
	}
	if unclean {
		for _, r := range replicas {
			if live(r) {
				return r, []int32{r}, true
			}
		}
	}
	return NoLeader, isr, false
}

// shrinkISR removes brokers that are not live from isr, in ISR order, but never the last
// member: KRaft keeps the last in-sync replica in the ISR so it can lead again when it returns.
func shrinkISR(isr []int32, live func(int32) bool) []int32 {
	out := slices.Clone(isr)
	for i := 0; i < len(out) && len(out) > 1; {
		if live(out[i]) {
			i++
			continue
		}
		out = slices.Delete(out, i, i+1)
	}
	return out
}

// reconcile returns the partition changes that make img consistent with broker liveness:
// fenced brokers leave every ISR they are not the last member of, and partitions whose leader
// is not live (or is NoLeader) get a new leader by electLeader. Topics and partitions are
// visited in name and index order, so the result is deterministic.
func reconcile(img *Image, pol policy) []Record {
	var out []Record
	for _, name := range img.sortedTopicNames() {
		t := img.Topics[name]
		for i, p := range t.Partitions {
			isr := shrinkISR(p.ISR, img.Live)
			if r := buildChange(img, t, int32(i), p, p.Leader, isr, currentAssignment(p), pol.unclean(img, t)); r != nil {
				out = append(out, *r)
			}
		}
	}
	return out
}

// withRecords returns the batch recs followed by reconcile over the image they produce, so a
// broker's fencing, unfencing or re-registration and its partition consequences commit
// atomically in one entry.
func withRecords(img *Image, pol policy, recs ...Record) ([]Record, error) {
	scratch, err := applyRecords(img, img.Index+1, recs)
	if err != nil {
		return nil, err
	}
	return append(recs, reconcile(scratch, pol)...), nil
}

// fenceRecords fences broker id (if registered and unfenced) and moves its leaderships and
// ISR memberships away. It returns nil when there is nothing to do.
func fenceRecords(img *Image, pol policy, id int32) ([]Record, error) {
	b := img.Brokers[id]
	if b == nil || b.Fenced {
		return nil, nil
	}
	return withRecords(img, pol, Record{Type: TypeFenceBroker, FenceBroker: &FenceBrokerRecord{ID: id, Epoch: b.Epoch}})
}

// unfenceRecords unfences broker id at epoch and elects it where it can lead an offline
// partition. It returns nil when the broker is already unfenced.
func unfenceRecords(img *Image, pol policy, id int32, epoch int64, now time.Time) ([]Record, error) {
	b := img.Brokers[id]
	if b == nil || b.Epoch != epoch || !b.Fenced {
		return nil, nil
	}
	return withRecords(img, pol, Record{Type: TypeUnfenceBroker, UnfenceBroker: &UnfenceBrokerRecord{ID: id, Epoch: epoch, Time: now}})
}

// registerRecords (re-)registers a broker. A re-registration replaces the previous
// incarnation, which is fenced first: its leaderships and ISR memberships move as if its
// session had expired, because a restarted broker may have lost unflushed data.
func registerRecords(img *Image, pol policy, reg RegisterBrokerRecord) ([]Record, error) {
	var recs []Record
	if b := img.Brokers[reg.ID]; b != nil && !b.Fenced {
		recs = append(recs, Record{Type: TypeFenceBroker, FenceBroker: &FenceBrokerRecord{ID: reg.ID, Epoch: b.Epoch}})
	}
	recs = append(recs, Record{Type: TypeRegisterBroker, RegisterBroker: &reg})
	return withRecords(img, pol, recs...)
}

// preferredLeaderRecords moves leadership back to the preferred replica (Replicas[0]) of every
// partition where it is live and in the ISR but not leading (auto.leader.rebalance.enable).
func preferredLeaderRecords(img *Image) []Record {
	var out []Record
	for _, name := range img.sortedTopicNames() {
		t := img.Topics[name]
		for i, p := range t.Partitions {
			pref := p.Replicas[0]
			if p.Leader == pref || !img.Live(pref) || !p.InISR(pref) {
				continue
			}
			if r := buildChange(img, t, int32(i), p, pref, p.ISR, currentAssignment(p), false); r != nil {
				out = append(out, *r)
			}
		}
	}
	return out
}

// expiredBrokers returns the unfenced brokers whose last heartbeat is older than timeout at
// now, in ascending id order. A broker without a recorded heartbeat counts as heartbeating at
// since (the moment this controller became active), so a new controller gives every broker a
// full session before fencing it.
func expiredBrokers(img *Image, lastHeartbeat map[int32]time.Time, since, now time.Time, timeout time.Duration) []int32 {
	var out []int32
	for _, id := range img.LiveBrokers() {
		last, ok := lastHeartbeat[id]
		if !ok || last.Before(since) {
			last = since
		}
		if now.Sub(last) > timeout {
			out = append(out, id)
		}
	}
	return out
}

// electionRecord decides ElectLeaders (KIP-460) for partition idx of topic, as KRaft's
// controller does:
//
//   - preferred: ELECTION_NOT_NEEDED when the preferred replica (Replicas[0]) leads; it takes
//     over when it is live and in the ISR; otherwise, only when the current leader is gone,
//     the first live in-sync replica after it; else PREFERRED_LEADER_NOT_AVAILABLE;
//   - unclean: ELECTION_NOT_NEEDED when the partition has a leader; else the first live
//     in-sync replica, or failing that the first live replica with ISR [it], whatever the
//     topic's unclean.leader.election.enable says; else ELIGIBLE_LEADERS_NOT_AVAILABLE.
//
// UNKNOWN_TOPIC_OR_PARTITION when the partition does not exist.
func electionRecord(img *Image, topic string, idx int32, unclean bool) (*Record, error) {
	t := img.Topics[topic]
	p := img.Partition(topic, idx)
	if t == nil || p == nil {
		return nil, errorf(kerr.UnknownTopicOrPartition, "partition %s-%d does not exist", topic, idx)
	}
	valid := func(r int32) bool { return r != NoLeader && img.Live(r) && p.InISR(r) }
	if unclean {
		if p.Leader != NoLeader {
			return nil, errorf(kerr.ElectionNotNeeded, "%s-%d has a leader (%d)", topic, idx, p.Leader)
		}
		r := buildChange(img, t, idx, p, NoLeader, p.ISR, currentAssignment(p), true)
		if r == nil || r.ChangePartition.Leader == NoLeader {
			return nil, errorf(kerr.EligibleLeadersNotAvailable, "%s-%d: no replica of %v is live", topic, idx, p.Replicas)
		}
		return r, nil
	}
	pref := p.Replicas[0]
	if p.Leader == pref {
		return nil, errorf(kerr.ElectionNotNeeded, "%s-%d: the preferred replica %d leads", topic, idx, pref)
	}
	leader := NoLeader
	switch {
	case valid(pref):
		leader = pref
	case !valid(p.Leader):
		for _, r := range p.Replicas[1:] {
			if valid(r) {
				leader = r
				break
			}
		}
	}
	if leader == NoLeader {
		return nil, errorf(kerr.PreferredLeaderNotAvailable, "%s-%d: the preferred replica %d is not a live in-sync replica (ISR %v)", topic, idx, pref, p.ISR)
	}
	return buildChange(img, t, idx, p, leader, p.ISR, currentAssignment(p), false), nil
}
