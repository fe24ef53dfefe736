package broker

import (
	"sync"
	"sync/atomic"

	"github.com/kchaos/kchaos/broker/replica"
	"github.com/kchaos/kchaos/broker/storage"
)

// partition is one topic partition hosted by this broker: its log, and its replica state
// (leader, leader epoch, replicas, ISR, high watermark, followers' progress) in the pure state
// machine of broker/replica, which the broker drives from the metadata image, appends,
// replica fetches and AlterPartition answers.
type partition struct {
	topic   *topic
	index   int32
	log     *storage.Log
	dataDir string

	// appendMu serialises appends so that offsets assigned and the high watermark advance in
	// order. Readers never take it.
	appendMu sync.Mutex
	// dropped is set, under appendMu, when the log is deleted (topic deleted or replica
	// reassigned away), so a follower fetch in flight does not apply to it.
	dropped bool

	mu sync.RWMutex // guards rs
	rs *replica.Partition

	// highWatermark mirrors rs.HighWatermark() for readers that take no lock; it is written
	// only under mu (publish).
	highWatermark atomic.Int64
	// recovering is set while the broker recovers the partition from stored corruption
	// (corruption.go).
	recovering atomic.Bool
}

// newPartition returns partition i of t on broker self over log l, leading nothing yet, with
// the high watermark at the log start offset: the rest is learned from the leader or, as
// leader, from the followers.
func newPartition(self int32, t *topic, i int32, l *storage.Log, dir string) *partition {
	p := &partition{topic: t, index: i, log: l, dataDir: dir, rs: replica.New(self, l.LogStartOffset())}
	p.highWatermark.Store(l.LogStartOffset())
	return p
}

// publish copies the state machine's high watermark to highWatermark. p.mu must be held.
func (p *partition) publish() { p.highWatermark.Store(p.rs.HighWatermark()) }

// LeaderEpoch returns the partition's current leader epoch.
func (p *partition) LeaderEpoch() int32 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.rs.LeaderEpoch()
}

// state returns a consistent copy of leader, epoch, replicas and ISR.
func (p *partition) state() (leader, epoch int32, replicas, isr []int32) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	a := p.rs.Assignment()
	return a.Leader, a.LeaderEpoch, a.Replicas, a.ISR
}

// HighWatermark returns the first offset consumers may not read yet.
func (p *partition) HighWatermark() int64 { return p.highWatermark.Load() }

// LogEndOffset returns the offset the next appended record gets.
func (p *partition) LogEndOffset() int64 { return p.log.LogEndOffset() }

// LogStartOffset returns the first offset still in the log.
func (p *partition) LogStartOffset() int64 { return p.log.LogStartOffset() }

// isLeader reports whether node leads the partition (node is always this broker).
func (p *partition) isLeader(node int32) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.rs.Self() == node && p.rs.IsLeader()
}
