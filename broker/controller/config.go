package controller

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"time"
)

// Config configures one controller node.
type Config struct {
	// NodeID is this node's node.id; it is also its Raft server id (decimal).
	NodeID int32
	// RaftAddr is the host:port of this node's Raft transport, as the other nodes reach it.
	RaftAddr string
	// RaftListener, when set, is used instead of listening on RaftAddr (tests pass a listener
	// on port 0 and put its address in RaftAddr and Voters).
	RaftListener net.Listener
	// ServeAPI, when set, serves each Kafka-protocol connection made to this node's
	// controller listener (one that starts with APIPreamble; see DialAPI); without it such
	// connections are closed. It may block: each connection gets its own goroutine.
	ServeAPI func(net.Conn)
	// Voters maps every voter's node id to its Raft address. In a cluster of 3 or more brokers
	// nodes 1..3 are voters and the rest observers (Raft non-voters); a single node is a voter
	// alone. Every voter bootstraps this same configuration on its first start.
	Voters map[int32]string
	// Observers maps non-voters' node ids to their Raft addresses. The active controller adds
	// each as a Raft non-voter when it takes over; a node can also be added later with
	// AddObserver or by registering with RegisterBroker's RaftAddr.
	Observers map[int32]string
	// Dial, when set, opens this node's Raft connections to other nodes (given their Raft
	// address from the quorum configuration), so each directed link can be routed through its
	// own proxy. Default: a plain TCP dial.
	Dial func(addr string, timeout time.Duration) (net.Conn, error)
	// DataDir holds raft.db (the bbolt log and stable store) and the snapshots/ folder.
	DataDir string

	// BrokerSessionTimeout is broker.session.timeout.ms: a broker that has not heartbeated for
	// this long is fenced. Default 9s.
	BrokerSessionTimeout time.Duration
	// BrokerHeartbeatInterval is broker.heartbeat.interval.ms, the interval brokers are
	// expected to heartbeat at; the active controller checks sessions this often. Default 2s.
	BrokerHeartbeatInterval time.Duration
	// LeaderImbalanceCheckInterval is leader.imbalance.check.interval.seconds: how often the
	// active controller moves leadership back to preferred replicas. Default 300s; negative
	// disables preferred-leader rebalancing (auto.leader.rebalance.enable=false).
	LeaderImbalanceCheckInterval time.Duration
	// UncleanLeaderElection is the broker-level unclean.leader.election.enable; topics
	// override it with the config of the same name. Default false.
	UncleanLeaderElection bool
	// DefaultPartitions is num.partitions, used when CreateTopic gets -1 or 0. Default 1.
	DefaultPartitions int32
	// DefaultReplicationFactor is default.replication.factor, used when CreateTopic gets -1
	// or 0. Default 1.
	DefaultReplicationFactor int16
	// ValidateTopicConfigs, when set, checks topic config overrides on CreateTopic and
	// AlterConfigs (the broker knows every topic config); its error becomes INVALID_CONFIG.
	ValidateTopicConfigs func(configs map[string]string) error
	// ValidateBrokerConfigs, when set, checks a broker resource's dynamic configs on
	// AlterBrokerConfigs (names that may change dynamically, values); its error becomes
	// INVALID_REQUEST, as Kafka answers.
	ValidateBrokerConfigs func(configs map[string]string) error

	// RaftHeartbeatTimeout and RaftElectionTimeout are hashicorp/raft's timeouts. Default 1s
	// each; tests use 200-500ms.
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot trigger a new one
	// (checked every SnapshotInterval). Default 8192 entries and 2 minutes.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// TrailingLogs is how many log entries a snapshot leaves behind, so slightly lagging
	// nodes catch up from the log instead of a whole snapshot. Default 10240.
	TrailingLogs uint64
	// ApplyTimeout bounds how long a proposal may wait to be accepted by Raft. Default 5s.
	ApplyTimeout time.Duration

	// Logger receives the controller's logs and hashicorp/raft's (at RaftLogLevel, default
	// "warn"). Default slog.Default().
	Logger       *slog.Logger
	RaftLogLevel string
	// Now is the clock for heartbeat sessions and record times. Default time.Now.
	Now func() time.Time
}

// withDefaults returns c with zero fields set to their defaults, or an error for a config
// that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		return c, fmt.Errorf("controller: DataDir is required")
	}
	if c.RaftAddr == "" && c.RaftListener == nil {
		return c, fmt.Errorf("controller: RaftAddr is required")
	}
	if c.RaftAddr == "" {
		c.RaftAddr = c.RaftListener.Addr().String()
	}
	// The node keeps its own copies: callers may reuse their maps.
	c.Voters, c.Observers = maps.Clone(c.Voters), maps.Clone(c.Observers)
	if len(c.Voters) == 0 {
		c.Voters = map[int32]string{c.NodeID: c.RaftAddr}
	}
	if _, voter := c.Voters[c.NodeID]; voter && c.Voters[c.NodeID] != c.RaftAddr {
		return c, fmt.Errorf("controller: node %d: RaftAddr %s differs from its Voters entry %s", c.NodeID, c.RaftAddr, c.Voters[c.NodeID])
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.BrokerSessionTimeout, 9*time.Second)
	def(&c.BrokerHeartbeatInterval, 2*time.Second)
	def(&c.LeaderImbalanceCheckInterval, 300*time.Second)
	def(&c.RaftHeartbeatTimeout, time.Second)
	def(&c.RaftElectionTimeout, time.Second)
	def(&c.SnapshotInterval, 2*time.Minute)
	def(&c.ApplyTimeout, 5*time.Second)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = 1
	}
	if c.DefaultReplicationFactor <= 0 {
		c.DefaultReplicationFactor = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RaftLogLevel == "" {
		c.RaftLogLevel = "warn"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// IsVoter reports whether this node is a Raft voter (a controller-quorum member).
func (c Config) IsVoter() bool {
	_, ok := c.Voters[c.NodeID]
	return ok
}
