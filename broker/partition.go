package broker

import (
	"sync"
	"sync/atomic"

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
