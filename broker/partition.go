package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kchaos/kchaos/broker/storage"
)

// partition is one topic partition hosted by this broker. Its replication state — leader,
// leader epoch, replicas, ISR, high watermark — exists from the start so the replication layer
// can drive it; on a single node the broker is the leader of every partition, the ISR is
// itself and the high watermark follows the log end offset.
type partition struct {
	topic   *topic
	index   int32
	log     *storage.Log
	dataDir string

	// appendMu serialises appends so that offsets assigned and the high watermark advance in
	// order. Readers never take it.
	appendMu sync.Mutex

	mu          sync.RWMutex // guards the fields below
	leader      int32
	leaderEpoch int32
	replicas    []int32
	isr         []int32
	// partitionEpoch is the controller's version of the partition state (cluster mode).
	partitionEpoch int32
	// followers tracks, while this broker leads, every other replica's fetch progress.
	followers map[int32]*followerState
	// pendingISR is the ISR of an AlterPartition in flight (nil when none). While it is in
	// flight the high watermark is computed over the larger of the two sets, as KIP-497's
	// "maximal ISR" prescribes.
	pendingISR []int32
	// epochStart is the log end offset when this broker became leader in leaderEpoch; a
	// follower joins the ISR only once it has reached it.
	epochStart int64
	// minISR is the topic's min.insync.replicas (cluster mode; 1 on a single node).
	minISR int

	// highWatermark is the first offset not yet committed (readable by consumers).
	highWatermark atomic.Int64
}

// LeaderEpoch returns the partition's current leader epoch.
func (p *partition) LeaderEpoch() int32 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.leaderEpoch
}

// state returns a consistent copy of leader, epoch, replicas and ISR.
func (p *partition) state() (leader, epoch int32, replicas, isr []int32) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.leader, p.leaderEpoch, p.replicas, p.isr
}

// HighWatermark returns the first offset consumers may not read yet.
func (p *partition) HighWatermark() int64 { return p.highWatermark.Load() }

// LogEndOffset returns the offset the next appended record gets.
func (p *partition) LogEndOffset() int64 { return p.log.LogEndOffset() }

// LogStartOffset returns the first offset still in the log.
func (p *partition) LogStartOffset() int64 { return p.log.LogStartOffset() }

// advanceHighWatermark moves the high watermark forward to hw (never backwards) and reports
// whether it moved.
func (p *partition) advanceHighWatermark(hw int64) bool {
	for {
		cur := p.highWatermark.Load()
		if hw <= cur {
			return false
		}
		if p.highWatermark.CompareAndSwap(cur, hw) {
			return true
		}
	}
}

// followerState is what the leader knows of one follower (Kafka's Replica state).
type followerState struct {
	// leo is the follower's log end offset: the offset of its last fetch.
	leo int64
	// lastCaughtUp is the last time the follower had fetched everything the leader had.
	lastCaughtUp time.Time
	// lastFetch and lastFetchLeaderLEO are the time of the previous fetch and the leader's log
	// end offset then: a fetch reaching lastFetchLeaderLEO was caught up at lastFetch.
	lastFetch          time.Time
	lastFetchLeaderLEO int64
}

// isLeader reports whether node leads the partition.
func (p *partition) isLeader(node int32) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.leader == node
}
