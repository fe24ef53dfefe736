package broker

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

// Transactional offset commits (KIP-98, KIP-447). TxnOffsetCommit appends the offsets to the
// group's __consumer_offsets partition as a transactional batch of the producer; the group
// coordinator keeps them pending per producer id, invisible to OffsetFetch, until the
// transaction's marker reaches that partition: a commit marker materialises them into the
// group's committed offsets, an abort marker drops them. A coordinator loading a partition
// replays the same rule from the log (batches and control batches), so pending offsets and
// their outcome survive coordinator failover.

// onTxnMarker applies a transaction marker written to __consumer_offsets partition
// `partition`: the pending offsets of producerID for the groups of that partition are
// committed (commit) or dropped. The partition-side WriteTxnMarkers handler calls it once the
// marker is in the log.
func (c *coordinator) onTxnMarker(partition int32, producerID int64, commit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loading[partition] {
		// The load may have read the log before this marker: apply it after the load.
		c.loadMarkers[partition] = append(c.loadMarkers[partition], txnMarker{producerID, commit})
		return
	}
	c.applyTxnMarker(partition, producerID, commit)
}

// txnMarker is a transaction marker written to a __consumer_offsets partition.
type txnMarker struct {
	producerID int64
	commit     bool
}

// applyTxnMarker commits or drops the pending offsets of producerID for the groups of
// partition. c.mu must be held.
func (c *coordinator) applyTxnMarker(partition int32, producerID int64, commit bool) {
	byGroup := c.pendingTxn[producerID]
	if byGroup == nil {
		return
	}
	n := c.numPartitions()
	for id, offs := range byGroup {
		if partitionFor(id, n) != partition {
			continue
		}
		delete(byGroup, id)
		if !commit {
			continue
		}
		g := c.groups[id]
		if g == nil {
			g = group.New(id, c.cfg, c.b.now())
			c.groups[id] = g
			c.books[g] = &groupBook{stored: g.MetaVersion()}
		}
		for tp, o := range offs {
			g.Offsets[tp] = o
		}
		c.b.metrics.offsetCommits.Add(float64(len(offs)))
	}
	if len(byGroup) == 0 {
		delete(c.pendingTxn, producerID)
	}
}

// addPendingTxn records offsets of producerID for group g, written to the log and waiting
// for the transaction's marker. c.mu must be held.
func (c *coordinator) addPendingTxn(producerID int64, g string, offs map[group.TopicPartition]group.Offset) {
	byGroup := c.pendingTxn[producerID]
	if byGroup == nil {
		byGroup = map[string]map[group.TopicPartition]group.Offset{}
		c.pendingTxn[producerID] = byGroup
	}
	cur := byGroup[g]
	if cur == nil {
		cur = map[group.TopicPartition]group.Offset{}
		byGroup[g] = cur
	}
	for tp, o := range offs {
		cur[tp] = o
	}
}

// hasPendingTxn reports whether group g has transactional offsets awaiting a marker (for
// OffsetFetch's UNSTABLE_OFFSET_COMMIT). c.mu must be held.
func (c *coordinator) hasPendingTxn(g string, tp group.TopicPartition) bool {
	for _, byGroup := range c.pendingTxn {
		if _, ok := byGroup[g][tp]; ok {
			return true
		}
	}
	return false
}

// installPendingTxn adds the pending offsets a partition load found. c.mu must be held.
func (c *coordinator) installPendingTxn(r txnOffsetReplay) {
	for pid, byGroup := range r {
		for g, offs := range byGroup {
			c.addPendingTxn(pid, g, offs)
		}
	}
}

// dropPendingTxn forgets the pending offsets of the groups of partition p, which this broker
// no longer leads. c.mu must be held.
func (c *coordinator) dropPendingTxn(p int32) {
	n := c.numPartitions()
	for pid, byGroup := range c.pendingTxn {
		for g := range byGroup {
			if partitionFor(g, n) == p {
				delete(byGroup, g)
			}
		}
		if len(byGroup) == 0 {
			delete(c.pendingTxn, pid)
		}
	}
}

// txnOffsetReplay collects the transactional offset commits of a partition being loaded,
// per producer id, group and partition.
type txnOffsetReplay map[int64]map[string]map[group.TopicPartition]group.Offset

// add records one offset commit record of a transactional batch of producer pid.
func (r txnOffsetReplay) add(pid int64, rec record) error {
	if len(rec.key) < 2 {
		return fmt.Errorf("record key of %d bytes", len(rec.key))
	}
	if v := int16(binary.BigEndian.Uint16(rec.key)); v != 0 && v != 1 {
		return nil // only offsets are written transactionally
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(rec.key); err != nil {
		return fmt.Errorf("offset commit key: %w", err)
	}
	if rec.value == nil {
		return nil
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(rec.value); err != nil {
		return fmt.Errorf("offset commit value: %w", err)
	}
	byGroup := r[pid]
	if byGroup == nil {
		byGroup = map[string]map[group.TopicPartition]group.Offset{}
		r[pid] = byGroup
	}
	offs := byGroup[k.Group]
	if offs == nil {
		offs = map[group.TopicPartition]group.Offset{}
		byGroup[k.Group] = offs
	}
	offs[group.TopicPartition{Topic: k.Topic, Partition: k.Partition}] = group.Offset{Offset: v.Offset,
		LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata, CommitTime: v.CommitTimestamp}
	return nil
}

// marker applies a replayed marker of producer pid: commit moves its offsets into the groups.
func (r txnOffsetReplay) marker(get func(string) *group.Group, pid int64, commit bool) {
	if commit {
		for g, offs := range r[pid] {
			gr := get(g)
			for tp, o := range offs {
				gr.Offsets[tp] = o
			}
		}
	}
	delete(r, pid)
}

// hasGroup reports whether group g has offsets still pending at the end of the replay.
func (r txnOffsetReplay) hasGroup(g string) bool {
	for _, byGroup := range r {
		if _, ok := byGroup[g]; ok {
			return true
		}
	}
	return false
}
