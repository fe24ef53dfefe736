package broker

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchaos/kchaos/broker/storage"
)

// Stored corruption found while serving a read (storage.CorruptError: a batch whose CRC32C
// does not match, in a segment loaded from disk without a check) is never served: the fetch
// gets KAFKA_STORAGE_ERROR, as from Kafka when a log directory goes offline, and the broker
// recovers the partition the way Kafka recovers a replica whose disk failed — by
// re-replication. A Kafka broker takes its whole (single) log directory offline and the
// controller moves its leaderships; here the broker fences its current incarnation the same
// way (it registers again, which moves every leadership it holds and takes it out of every
// ISR), truncates the damaged partition to the last good batch once it no longer leads it,
// and comes back as a follower that fetches the rest from the new leader. With no other
// in-sync replica to take over, the truncation loses what followed the bad batch, as Kafka
// loses it when the only replica's disk is gone; the checker counts it.

// onReadError turns a read failure of p into the answer for the client, starting recovery
// when the failure is stored corruption.
func (b *Broker) onReadError(p *partition, err error) *kerr.Error {
	var ce *storage.CorruptError
	if !errors.As(err, &ce) {
		return storageError(err)
	}
	if p.recovering.CompareAndSwap(false, true) {
		b.metrics.corruptReads.Inc()
		b.bgWG.Add(1)
		go b.recoverCorrupt(p, ce.Offset)
	}
	return kerr.KafkaStorageError
}

// recoverCorrupt fences this broker, waits (up to 10s) until it no longer leads p, truncates
// p's log at offset and lets the fetcher re-replicate the rest.
func (b *Broker) recoverCorrupt(p *partition, offset int64) {
	defer b.bgWG.Done()
	defer p.recovering.Store(false)
	b.log.Error("corrupt stored batch: fencing this broker to hand over leadership, then truncating and re-replicating",
		"topic", p.topic.name, "partition", p.index, "offset", offset)
	b.cl.brokerEpoch.Store(0) // the heartbeat loop registers again: the old incarnation is fenced
	deadline := time.Now().Add(10 * time.Second)
	for p.isLeader(b.cfg.NodeID) && time.Now().Before(deadline) {
		select {
		case <-b.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if offset >= p.log.LogEndOffset() {
		return
	}
	if err := p.log.TruncateTo(max(offset, p.log.LogStartOffset())); err != nil {
		b.log.Error("truncating a corrupt log", "topic", p.topic.name, "partition", p.index, "err", err)
		return
	}
	b.metrics.truncations.Inc()
	p.mu.Lock()
	p.rs.Truncated(p.log.LogEndOffset())
	p.publish()
	p.mu.Unlock()
	b.log.Warn("truncated at the corrupt batch; the rest comes from the leader", "topic", p.topic.name, "partition", p.index,
		"log_end_offset", p.log.LogEndOffset(), "still_leader", p.isLeader(b.cfg.NodeID))
}
