// Package group is the state machine of Kafka's classic consumer-group protocol (the one behind
// JoinGroup, SyncGroup, Heartbeat and LeaveGroup), kept free of I/O and clocks so it can be
// table-tested: every operation takes the current time, timers are driven by the caller
// through Tick, and responses are queued in an outbox that the caller delivers once it has
// persisted whatever the operation changed (see MetaVersion).
//
// A Group is not safe for concurrent use; the broker's coordinator serialises access.
package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a group's state, named as Kafka names it in DescribeGroups and ListGroups.
type State int8

// The classic protocol's group states.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s State) String() string { return stateNames[s] }

// States lists every state, in declaration order.
var States = []State{Empty, PreparingRebalance, CompletingRebalance, Stable, Dead}

// Protocol is one assignment protocol a member supports, with its metadata (for consumers,
// the serialized subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// Member is a group member.
type Member struct {
	ID string
	// InstanceID is group.instance.id for static members, "" for dynamic ones.
	InstanceID       string
	ClientID         string
	ClientHost       string
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	Protocols        []Protocol
	// Assignment is what the leader assigned this member in the current generation.
	Assignment []byte

	heartbeatAt time.Time
	joinReply   func(JoinResult)
	syncReply   func(SyncResult)
	joinSeq     uint64
}

// Metadata returns the member's metadata for protocol name, or nil.
func (m *Member) Metadata(name string) []byte {
	for _, p := range m.Protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// Offset is a committed offset.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	// CommitTime is the commit's time in Unix milliseconds.
	CommitTime int64
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Config holds the broker settings a group obeys.
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long the first rebalance of
	// an empty group waits for more members (extended by the same amount for each new joiner,
	// up to the rebalance timeout). Kafka's default is 3s.
	InitialRebalanceDelay time.Duration
}

// Group is one consumer group: its members, generation and committed offsets.
type Group struct {
	ID           string
	State        State
	Generation   int32
	ProtocolType string
	Protocol     string
	Leader       string
	Members      map[string]*Member
	Offsets      map[TopicPartition]Offset
	// StateSince is when the group entered State.
	StateSince time.Time
	// Rebalances counts completed joins (generations started).
	Rebalances int

	cfg     Config
	static  map[string]string    // group.instance.id -> member id
	pending map[string]time.Time // member ids handed out with MEMBER_ID_REQUIRED -> expiry
	seq     uint64

	joinDeadline  time.Time
	initialDelay  bool      // the first rebalance of an empty group is waiting for joiners
	initialCap    time.Time // the initial delay never extends past this
	joinedInDelay bool

	metaVersion uint64
	outbox      []func()
}

// New returns an empty group.
func New(id string, cfg Config, now time.Time) *Group {
	return &Group{ID: id, cfg: cfg, StateSince: now, Members: map[string]*Member{}, Offsets: map[TopicPartition]Offset{},
		static: map[string]string{}, pending: map[string]time.Time{}}
}

// MetaVersion changes whenever the group's persisted metadata (generation, protocol, leader,
// members and their assignments) changes; the caller stores the group when it moves.
func (g *Group) MetaVersion() uint64 { return g.metaVersion }

// TakeOutbox returns the responses queued by the operations so far and clears the queue. The
// caller runs them after persisting the group.
func (g *Group) TakeOutbox() []func() {
	out := g.outbox
	g.outbox = nil
	return out
}

func (g *Group) setState(s State, now time.Time) {
	g.State = s
	g.StateSince = now
}

func (g *Group) deliverJoin(m *Member, r JoinResult) {
	if m.joinReply == nil {
		return
	}
	reply := m.joinReply
	m.joinReply = nil
	g.outbox = append(g.outbox, func() { reply(r) })
}

func (g *Group) deliverSync(m *Member, r SyncResult) {
	if m.syncReply == nil {
		return
	}
	reply := m.syncReply
	m.syncReply = nil
	g.outbox = append(g.outbox, func() { reply(r) })
}

// Restore installs a member read back from storage (the group is then Stable, as Kafka loads
// a group with members). The member's session starts at now.
func (g *Group) Restore(m *Member, now time.Time) {
	m.heartbeatAt = now
	g.seq++
	m.joinSeq = g.seq
	g.Members[m.ID] = m
	if m.InstanceID != "" {
		g.static[m.InstanceID] = m.ID
	}
}

// SetLoaded sets the state after Restore: Stable with members, Empty without.
func (g *Group) SetLoaded(now time.Time) {
	if len(g.Members) > 0 {
		g.setState(Stable, now)
	} else {
		g.setState(Empty, now)
	}
}

// InstanceMember returns the member id bound to a group.instance.id.
func (g *Group) InstanceMember(instanceID string) (string, bool) {
	id, ok := g.static[instanceID]
	return id, ok
}

// IsEmpty reports whether the group has no members and no pending joiners.
func (g *Group) IsEmpty() bool { return len(g.Members) == 0 && len(g.pending) == 0 }

// MemberIDs returns the member ids sorted by join order.
func (g *Group) MemberIDs() []string {
	ids := make([]string, 0, len(g.Members))
	for id := range g.Members {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return int(g.Members[a].joinSeq) - int(g.Members[b].joinSeq) })
	return ids
}

// Kill marks the group Dead (deleted) and answers anything waiting with errDead.
func (g *Group) Kill(now time.Time, err *kerr.Error) {
	for _, m := range g.Members {
		g.deliverJoin(m, JoinResult{Err: err, Generation: -1, MemberID: m.ID})
		g.deliverSync(m, SyncResult{Err: err})
	}
	g.setState(Dead, now)
}

// maxRebalanceTimeout is the longest rebalance timeout of the members (Kafka bounds a
// rebalance by it).
func (g *Group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.Members {
		d = max(d, m.RebalanceTimeout)
	}
	return d
}

// Config returns the settings the group was created with.
func (g *Group) Config() Config { return g.cfg }
