// Package replica is the replica state machine of one partition on one broker: Kafka's
// Partition and Replica logic without the I/O. It holds what the controller decided (leader,
// leader epoch, partition epoch, replicas, ISR), the ISR change in flight, the high watermark
// and, while this broker leads, each follower's fetch progress, and it decides:
//
//   - leadership transitions when a new assignment arrives (Apply);
//   - the leader's high watermark: the smallest log end offset over the maximal ISR (the
//     committed ISR plus any proposed in flight, KIP-497), never backwards, and not at all
//     while the committed ISR is smaller than min.insync.replicas (KIP-966's strict min ISR);
//   - ISR expansion (a follower that reached the high watermark and the start of the current
//     leader epoch) and shrink (a follower not caught up for replica.lag.time.max.ms), one
//     AlterPartition in flight at a time, as Proposals for the broker to send;
//   - whether an append is allowed (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS) and whether
//     an acks=all request waiting for an offset is done (CheckAcks);
//   - on followers, the high watermark taken from the leader and the truncation a divergent
//     or out-of-range log needs (truncate.go, KIP-101, KIP-279, KIP-320).
//
// Time comes in as arguments, decisions go out as return values: the package opens no
// sockets, touches no disk and takes no locks. The broker serialises calls on one Partition
// under its own lock, reads and writes the log, sends AlterPartition to the controller and
// feeds the answers back.
package replica

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// NoLeader is the leader id of an offline partition (the controller's).
const NoLeader int32 = -1

// Assignment is a partition's state as the controller decided it: from the metadata image or
// from an AlterPartition answer.
type Assignment struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	// Replicas is the assignment in preference order; ISR the in-sync replicas.
	Replicas []int32
	ISR      []int32
}

// Follower is what the leader knows of one follower's fetches (Kafka's Replica state).
type Follower struct {
	// LogEndOffset is the follower's log end offset (the offset of its last fetch); -1 until
	// it fetches in the current leader epoch.
	LogEndOffset int64
	// LastCaughtUp is the last time the follower had fetched everything the leader had.
	LastCaughtUp time.Time
	// LogStartOffset is the follower's log start offset from its last fetch; -1 until it
	// fetches in the current leader epoch.
	LogStartOffset int64
	// lastFetch and lastFetchLeaderLEO are the time of the previous fetch and the leader's
	// log end offset then: a fetch reaching lastFetchLeaderLEO was caught up at lastFetch.
	lastFetch          time.Time
	lastFetchLeaderLEO int64
}

// Proposal is an ISR change for the broker to send to the controller as AlterPartition; it
// stays in flight until AlterPartitionDone.
type Proposal struct {
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32
}

// Change says what Apply did.
type Change struct {
	// Stale is set when the assignment is older than what the partition already has (an
	// AlterPartition answer moved it past the image); nothing changed.
	Stale bool
	// BecameLeader is set when this broker now leads in a leader epoch it did not lead
	// before: the broker stamps the epoch into the log and loads coordinator state.
	BecameLeader bool
	// LostLeadership is set when this broker led before and does not now.
	LostLeadership bool
	// HighWatermarkMoved is set when the high watermark advanced.
	HighWatermarkMoved bool
}

// Partition is the replica state of one partition on broker Self. The zero value is not
// usable; create it with New.
type Partition struct {
	self int32
	a    Assignment
	// minISR is the topic's min.insync.replicas.
	minISR int
	// pending is the ISR of the AlterPartition in flight, nil when none.
	pending *Proposal
	// epochStart is the log end offset when this broker became leader in the current leader
	// epoch; a follower joins the ISR only once it has reached it.
	epochStart int64
	hw         int64
	// followers is every other replica's progress while this broker leads; nil otherwise.
	followers map[int32]*Follower
}

// New returns the state of a partition just opened on broker self, leading nothing, with the
// high watermark at hw (the log start offset: a broker learns the rest from the leader or, as
// leader, from the followers).
func New(self int32, hw int64) *Partition {
	return &Partition{self: self, a: Assignment{Leader: NoLeader, LeaderEpoch: -1}, minISR: 1, hw: hw}
}

// Self returns the broker id this state belongs to.
func (p *Partition) Self() int32 { return p.self }

// Assignment returns a copy of the current assignment.
func (p *Partition) Assignment() Assignment {
	a := p.a
	a.Replicas, a.ISR = slices.Clone(a.Replicas), slices.Clone(a.ISR)
	return a
}

// Leader returns the leader's id (NoLeader when offline or not yet known).
func (p *Partition) Leader() int32 { return p.a.Leader }

// LeaderEpoch returns the current leader epoch (-1 before the first assignment).
func (p *Partition) LeaderEpoch() int32 { return p.a.LeaderEpoch }

// EpochStart returns the log end offset when this broker became leader in the current leader
// epoch: a new leader's high watermark may lag below it until its followers catch up.
func (p *Partition) EpochStart() int64 { return p.epochStart }

// IsLeader reports whether this broker leads the partition.
func (p *Partition) IsLeader() bool { return p.a.Leader == p.self }

// MinISR returns min.insync.replicas as last applied.
func (p *Partition) MinISR() int { return p.minISR }

// HighWatermark returns the first offset not yet committed.
func (p *Partition) HighWatermark() int64 { return p.hw }

// Pending returns the ISR change in flight, or nil.
func (p *Partition) Pending() *Proposal { return p.pending }

// MaximalISR returns the committed ISR plus the replicas of the change in flight (KIP-497):
// the set the high watermark and acks=all wait for.
func (p *Partition) MaximalISR() []int32 {
	out := slices.Clone(p.a.ISR)
	if p.pending != nil {
		for _, r := range p.pending.ISR {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// UnderReplicated reports whether this broker leads and the ISR is smaller than the replica
// set (Kafka's UnderReplicatedPartitions).
func (p *Partition) UnderReplicated() bool { return p.IsLeader() && len(p.a.ISR) < len(p.a.Replicas) }

// UnderMinISR reports whether this broker leads and the ISR is smaller than
// min.insync.replicas (Kafka's UnderMinIsrPartitionCount).
func (p *Partition) UnderMinISR() bool { return p.IsLeader() && len(p.a.ISR) < p.minISR }

// Follower returns the leader's view of follower id, or nil.
func (p *Partition) Follower(id int32) *Follower {
	if f := p.followers[id]; f != nil {
		c := *f
		return &c
	}
	return nil
}

// Apply moves the partition to the assignment a controller decided, with the topic's
// min.insync.replicas; leo is the local log end offset. An assignment older than the current
// one in both partition and leader epoch is ignored (Stale). Becoming leader in a new epoch
// resets every follower's progress (an in-sync follower counts as caught up now), drops any
// ISR change in flight and records the epoch's start offset; becoming a follower drops the
// leader state. A leader that stays leader in the same epoch keeps its followers' progress,
// adding fresh state for new replicas and forgetting removed ones.
func (p *Partition) Apply(a Assignment, minISR int, leo int64, now time.Time) Change {
	if a.PartitionEpoch < p.a.PartitionEpoch && a.LeaderEpoch <= p.a.LeaderEpoch {
		return Change{Stale: true}
	}
	wasLeader := p.IsLeader()
	newEpoch := a.LeaderEpoch != p.a.LeaderEpoch
	p.a = Assignment{Leader: a.Leader, LeaderEpoch: a.LeaderEpoch, PartitionEpoch: a.PartitionEpoch,
		Replicas: slices.Clone(a.Replicas), ISR: slices.Clone(a.ISR)}
	p.minISR = max(minISR, 1)
	var c Change
	switch {
	case p.IsLeader() && (!wasLeader || newEpoch):
		c.BecameLeader = true
		p.followers = map[int32]*Follower{}
		p.pending = nil
		p.epochStart = leo
		p.addFollowers(now)
	case p.IsLeader():
		for id := range p.followers {
			if !slices.Contains(a.Replicas, id) {
				delete(p.followers, id)
			}
		}
		p.addFollowers(now)
	default:
		c.LostLeadership = wasLeader
		p.followers, p.pending = nil, nil
	}
	c.HighWatermarkMoved = p.updateHighWatermark(leo)
	return c
}

// addFollowers gives every replica without follower state a fresh one: no fetch yet, caught
// up now when it is in the ISR.
func (p *Partition) addFollowers(now time.Time) {
	for _, r := range p.a.Replicas {
		if r == p.self || p.followers[r] != nil {
			continue
		}
		f := &Follower{LogEndOffset: -1, LogStartOffset: -1, lastFetchLeaderLEO: -1}
		if slices.Contains(p.a.ISR, r) {
			f.LastCaughtUp = now
		}
		p.followers[r] = f
	}
}

// updateHighWatermark advances the leader's high watermark to the smallest log end offset
// over the maximal ISR (leo for the leader itself), unless the committed ISR is smaller than
// min.insync.replicas or an ISR member has not fetched in this epoch yet. It reports whether
// the high watermark moved.
func (p *Partition) updateHighWatermark(leo int64) bool {
	if !p.IsLeader() || len(p.a.ISR) < p.minISR {
		return false
	}
	hw := leo
	for _, r := range p.MaximalISR() {
		if r == p.self {
			continue
		}
		f := p.followers[r]
		if f == nil || f.LogEndOffset < 0 {
			return false
		}
		hw = min(hw, f.LogEndOffset)
	}
	if hw <= p.hw {
		return false
	}
	p.hw = hw
	return true
}

// Appended records that the leader's log end offset is now leo and reports whether the high
// watermark moved (at once when the ISR is the leader alone).
func (p *Partition) Appended(leo int64) bool { return p.updateHighWatermark(leo) }

// FollowerFetch records a fetch by follower replica at fetchOffset (its log end offset) at
// now, when the leader's log end offset is leo. It reports whether the high watermark moved,
// and proposes adding the follower to the ISR once it has reached both the high watermark and
// the start of the current leader epoch, unless another change is in flight. Fetches from
// brokers that are not replicas, or while this broker does not lead, change nothing.
func (p *Partition) FollowerFetch(replica int32, fetchOffset, leo int64, now time.Time) (bool, *Proposal) {
	f := p.followers[replica]
	if !p.IsLeader() || f == nil {
		return false, nil
	}
	if fetchOffset >= leo {
		f.LastCaughtUp = now
	} else if fetchOffset >= f.lastFetchLeaderLEO && f.lastFetch.After(f.LastCaughtUp) {
		f.LastCaughtUp = f.lastFetch
	}
	f.LogEndOffset, f.lastFetch, f.lastFetchLeaderLEO = fetchOffset, now, leo
	moved := p.updateHighWatermark(leo)
	if slices.Contains(p.a.ISR, replica) || p.pending != nil || fetchOffset < p.hw || fetchOffset < p.epochStart {
		return moved, nil
	}
	return moved, p.propose(append(slices.Clone(p.a.ISR), replica))
}

// FollowerLogStartOffset records the log start offset follower replica reported in its
// fetch (Kafka carries it in every replica fetch request) and reports whether it changed.
// Fetches from brokers that are not replicas, or while this broker does not lead, change
// nothing.
func (p *Partition) FollowerLogStartOffset(replica int32, logStartOffset int64) bool {
	f := p.followers[replica]
	if !p.IsLeader() || f == nil || f.LogStartOffset == logStartOffset {
		return false
	}
	f.LogStartOffset = logStartOffset
	return true
}

// LowWatermark returns the smallest log start offset over the leader (leaderLogStartOffset)
// and its followers on live brokers, as Kafka's lowWatermarkIfLeader: DeleteRecords is done
// once it reaches the requested offset. A live follower that has not fetched in this leader
// epoch yet counts as -1. It returns -1 when this broker does not lead.
func (p *Partition) LowWatermark(leaderLogStartOffset int64, live func(int32) bool) int64 {
	if !p.IsLeader() {
		return -1
	}
	low := leaderLogStartOffset
	for id, f := range p.followers {
		if live(id) {
			low = min(low, f.LogStartOffset)
		}
	}
	return low
}

// Tick proposes removing the ISR followers that are out of sync at now: behind the leader's
// log end offset leo and not caught up for longer than maxLag (replica.lag.time.max.ms). It
// returns nil when all are in sync, another change is in flight or this broker does not lead.
func (p *Partition) Tick(leo int64, now time.Time, maxLag time.Duration) *Proposal {
	if !p.IsLeader() || p.pending != nil {
		return nil
	}
	keep := make([]int32, 0, len(p.a.ISR))
	for _, r := range p.a.ISR {
		f := p.followers[r]
		if r != p.self && f != nil && f.LogEndOffset != leo && now.Sub(f.LastCaughtUp) > maxLag {
			continue
		}
		keep = append(keep, r)
	}
	if len(keep) == len(p.a.ISR) {
		return nil
	}
	return p.propose(keep)
}

// propose puts isr in flight and returns the proposal.
func (p *Partition) propose(isr []int32) *Proposal {
	p.pending = &Proposal{LeaderEpoch: p.a.LeaderEpoch, PartitionEpoch: p.a.PartitionEpoch, ISR: isr}
	c := *p.pending
	c.ISR = slices.Clone(isr)
	return &c
}

// AlterPartitionDone takes the controller's answer to proposal prop: res is the partition's
// new state, or nil when the change was refused or no controller answered. The change in
// flight ends (unless a newer leader epoch already dropped it); the answer's ISR is installed
// when it belongs to the current leader epoch and is newer than what the partition has. It
// reports whether the ISR changed and whether the high watermark moved; leo is the leader's
// log end offset.
func (p *Partition) AlterPartitionDone(prop Proposal, res *Assignment, leo int64) (applied, hwMoved bool) {
	if p.pending != nil && p.pending.LeaderEpoch == prop.LeaderEpoch && p.pending.PartitionEpoch == prop.PartitionEpoch {
		p.pending = nil
	}
	if res != nil && p.IsLeader() && res.LeaderEpoch == p.a.LeaderEpoch && res.PartitionEpoch > p.a.PartitionEpoch {
		p.a.ISR, p.a.PartitionEpoch = slices.Clone(res.ISR), res.PartitionEpoch
		applied = true
	}
	return applied, p.updateHighWatermark(leo)
}

// CheckAppend says whether the leader may append a batch: NOT_LEADER_OR_FOLLOWER when this
// broker does not lead, and for acks=all NOT_ENOUGH_REPLICAS when the committed ISR is smaller
// than min.insync.replicas (nothing is written then), as Kafka's appendRecordsToLeader.
func (p *Partition) CheckAppend(acksAll bool) *kerr.Error {
	switch {
	case !p.IsLeader():
		return kerr.NotLeaderForPartition
	case acksAll && len(p.a.ISR) < p.minISR:
		return kerr.NotEnoughReplicas
	}
	return nil
}

// CheckAcks says whether an acks=all request waiting for lastOffset is done, and with which
// error: NOT_LEADER_OR_FOLLOWER once this broker stops leading; NOT_ENOUGH_REPLICAS_AFTER_APPEND
// once the maximal ISR is smaller than min.insync.replicas (the data stays in the log);
// success once the high watermark passes lastOffset. Otherwise it keeps waiting (done false).
//
// Kafka answers NOT_ENOUGH_REPLICAS_AFTER_APPEND only once the high watermark reached the
// offset, which under KIP-966's strict min ISR cannot happen after the ISR shrank, so there
// the request times out; here it is answered as soon as the ISR is too small, so producers
// retry at once instead of after request.timeout.ms.
func (p *Partition) CheckAcks(lastOffset int64) (done bool, err *kerr.Error) {
	switch {
	case !p.IsLeader():
		return true, kerr.NotLeaderForPartition
	case len(p.MaximalISR()) < p.minISR:
		return true, kerr.NotEnoughReplicasAfterAppend
	case p.hw > lastOffset:
		return true, nil
	}
	return false, nil
}

// FollowerHighWatermark takes the leader's high watermark from a fetch answer on a follower
// whose log end offset is leo: the high watermark moves forward to min(leaderHW, leo). It
// reports whether it moved.
func (p *Partition) FollowerHighWatermark(leaderHW, leo int64) bool {
	hw := min(leaderHW, leo)
	if hw <= p.hw {
		return false
	}
	p.hw = hw
	return true
}

// Truncated records that the local log was truncated to end at leo: the high watermark never
// exceeds the log end offset.
func (p *Partition) Truncated(leo int64) { p.hw = min(p.hw, leo) }
