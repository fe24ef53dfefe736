package broker

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

// offsetsTopic is the internal compacted topic holding committed offsets and group metadata,
// with Kafka's record schemas: key version 0/1 is an offset commit (group, topic, partition),
// key version 2 is a group's metadata; a null value (tombstone) deletes the key.
const offsetsTopic = "__consumer_offsets"

// offsetsTopicSegmentBytes is offsets.topic.segment.bytes' Kafka default (100 MiB).
const offsetsTopicSegmentBytes = 104857600

// offsetsCommitTimeout is offsets.commit.timeout.ms: how long a group write waits for the
// ISR.
const offsetsCommitTimeout = 5 * time.Second

// record is one key/value of __consumer_offsets; a nil value is a tombstone.
type record struct{ key, value []byte }

func offsetKey(g, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: 1, Group: g, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetRecord(g string, tp group.TopicPartition, o group.Offset) record {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTime
	return record{key: offsetKey(g, tp.Topic, tp.Partition), value: v.AppendTo(nil)}
}

func groupKey(g string) []byte {
	k := kmsg.GroupMetadataKey{Version: 2, Group: g}
	return k.AppendTo(nil)
}

// groupRecord serialises a group's metadata (value version 3) as Kafka stores it.
func groupRecord(g *group.Group) record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.ProtocolType
	v.Generation = g.Generation
	if g.Protocol != "" {
		v.Protocol = &g.Protocol
	}
	if g.Leader != "" {
		v.Leader = &g.Leader
	}
	v.CurrentStateTimestamp = g.StateSince.UnixMilli()
	for _, id := range g.MemberIDs() {
		m := g.Members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.ClientID, vm.ClientHost = m.ID, m.ClientID, m.ClientHost
		if m.InstanceID != "" {
			vm.InstanceID = &m.InstanceID
		}
		vm.RebalanceTimeoutMillis = int32(m.RebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.SessionTimeout / time.Millisecond)
		vm.Subscription = m.Metadata(g.Protocol)
		vm.Assignment = m.Assignment
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return record{key: groupKey(g.ID), value: v.AppendTo(nil)}
}

// encodeBatch builds one uncompressed magic-2 record batch of recs.
func encodeBatch(recs []record, now int64) []byte {
	return encodeProducerBatch(recs, now, -1, -1)
}

// encodeProducerBatch builds one uncompressed magic-2 record batch of recs; a producer id of
// 0 or more makes it a transactional batch of that producer and epoch, with no sequence, as
// Kafka's coordinators write transactional offset commits.
func encodeProducerBatch(recs []record, now int64, producerID int64, epoch int16) []byte {
	var body []byte
	for i, r := range recs {
		rec := []byte{0}                 // attributes
		rec = kbin.AppendVarlong(rec, 0) // timestamp delta
		rec = kbin.AppendVarint(rec, int32(i))
		rec = kbin.AppendVarintBytes(rec, r.key)
		if r.value == nil {
			rec = kbin.AppendVarint(rec, -1)
		} else {
			rec = kbin.AppendVarintBytes(rec, r.value)
		}
		rec = kbin.AppendVarint(rec, 0) // headers
		body = kbin.AppendVarint(body, int32(len(rec)))
		body = append(body, rec...)
	}
	batch := kmsg.RecordBatch{Magic: 2, NumRecords: int32(len(recs)), LastOffsetDelta: int32(len(recs) - 1),
		ProducerID: producerID, ProducerEpoch: epoch, FirstSequence: -1, FirstTimestamp: now, MaxTimestamp: now, Records: body}
	if producerID >= 0 {
		batch.Attributes = attrTransactional
	}
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[batchLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[batchCRC:], crc32.Checksum(raw[batchAttributes:], castagnoli))
	return raw
}

// appendRecords appends recs to the group's __consumer_offsets partition as one batch; the
// call returns once the batch is in the log (the page cache under default flush settings).
func (c *coordinator) appendRecords(groupID string, recs []record) error {
	if len(recs) == 0 {
		return nil
	}
	p, kerrv := c.b.partitionFor(offsetsTopic, partitionFor(groupID, c.numPartitions()))
	if kerrv != nil {
		return kerrv
	}
	ai, kerrv, msg := c.b.appendAsLeader(p, encodeBatch(recs, c.b.now().UnixMilli()), -1)
	if kerrv != nil {
		return fmt.Errorf("%w: %s", kerrv, msg)
	}
	// Committed means replicated to the ISR, as Kafka's coordinator appends with acks=all.
	timer := time.NewTimer(offsetsCommitTimeout)
	defer timer.Stop()
	if kerrv := c.b.waitReplicated(p, ai.LastOffset, timer.C); kerrv != nil {
		return kerrv
	}
	return nil
}

// storeGroup persists g's metadata (a tombstone once the group is Dead). c.mu must be held.
func (c *coordinator) storeGroup(g *group.Group) error {
	if g.State == group.Dead {
		return c.appendRecords(g.ID, []record{{key: groupKey(g.ID)}})
	}
	return c.appendRecords(g.ID, []record{groupRecord(g)})
}

// loadPartition reads partition p of __consumer_offsets from its start to its log end offset
// and installs the groups it describes: their committed offsets, and their members in a
// Stable group (sessions restart now). It is what a broker calls when it becomes the
// partition's leader; groups of p are refused with COORDINATOR_LOAD_IN_PROGRESS meanwhile.
func (c *coordinator) loadPartition(p int32) error {
	c.mu.Lock()
	c.loading[p] = true
	c.mu.Unlock()
	groups, pending, err := c.readPartition(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.loading, p)
	markers := c.loadMarkers[p]
	delete(c.loadMarkers, p)
	if err != nil {
		return err
	}
	now := c.b.now()
	for id, g := range groups {
		g.SetLoaded(now)
		c.groups[id] = g
		c.books[g] = &groupBook{stored: g.MetaVersion(), rebalances: g.Rebalances}
	}
	c.installPendingTxn(pending)
	for _, m := range markers {
		c.applyTxnMarker(p, m.producerID, m.commit)
	}
	c.owned[p] = true
	return nil
}

// unloadPartition drops the groups of partition p: this broker stopped leading it. Waiting
// JoinGroup and SyncGroup requests are answered NOT_COORDINATOR so clients look up the new
// coordinator.
func (c *coordinator) unloadPartition(p int32) {
	var out []func()
	c.mu.Lock()
	delete(c.owned, p)
	n := c.numPartitions()
	for id, g := range c.groups {
		if partitionFor(id, n) == p {
			g.Kill(c.b.now(), kerr.NotCoordinator)
			out = append(out, g.TakeOutbox()...)
			delete(c.groups, id)
			delete(c.books, g)
		}
	}
	c.dropPendingTxn(p)
	c.mu.Unlock()
	for _, f := range out {
		f()
	}
}

// readPartition replays partition p into groups.
// Transactional offset commits without their marker yet come back as pending.
func (c *coordinator) readPartition(p int32) (map[string]*group.Group, txnOffsetReplay, error) {
	part, kerrv := c.b.partitionFor(offsetsTopic, p)
	if kerrv != nil {
		return nil, nil, kerrv
	}
	groups := map[string]*group.Group{}
	pending := txnOffsetReplay{}
	now := c.b.now()
	get := func(id string) *group.Group {
		g := groups[id]
		if g == nil {
			g = group.New(id, c.cfg, now)
			groups[id] = g
		}
		return g
	}
	off := part.LogStartOffset()
	// The new leader's log is the partition's truth, and its high watermark may still trail
	// what the previous leader had committed (it learns it from the followers' next fetches),
	// so groups load up to the log end offset, as Kafka's coordinator does.
	end := part.LogEndOffset()
	for off < end {
		res, err := part.log.Read(off, 1<<20, end, true)
		if err != nil {
			return nil, nil, fmt.Errorf("broker: read %s-%d at %d: %w", offsetsTopic, p, off, err)
		}
		raw, err := res.Bytes()
		res.Release()
		if err != nil {
			return nil, nil, err
		}
		if len(raw) == 0 {
			break
		}
		next, err := replayOrigins(raw, func(o batchOrigin, r record) error {
			if o.control {
				pending.marker(get, o.producerID, o.commit)
				return nil
			}
			if o.transactional && o.producerID >= 0 {
				if err := pending.add(o.producerID, r); err != nil {
					c.b.log.Warn("skipping malformed transactional offset commit", "partition", p, "err", err)
				}
				return nil
			}
			if err := applyRecord(get, groups, r, now); err != nil {
				// One bad record must not keep the coordinator (or the broker) from starting.
				c.b.log.Warn("skipping malformed __consumer_offsets record", "partition", p, "err", err)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("broker: replay %s-%d: %w", offsetsTopic, p, err)
		}
		if next <= off {
			break
		}
		off = next
	}
	for id, g := range groups {
		if g.IsEmpty() && len(g.Offsets) == 0 && g.Generation == 0 && !pending.hasGroup(id) {
			delete(groups, id)
		}
	}
	return groups, pending, nil
}

// batchOrigin describes the batch a replayed record came from: the producer of a
// transactional batch (-1 otherwise), and for a control batch the marker (commit or abort).
type batchOrigin struct {
	producerID    int64
	transactional bool
	control       bool
	commit        bool
}

// replayBatches calls fn for every record of the uncompressed batches in raw and returns the
// offset after the last batch.
func replayBatches(raw []byte, fn func(record) error) (int64, error) {
	return replayOrigins(raw, func(o batchOrigin, r record) error {
		if o.control {
			return nil
		}
		return fn(r)
	})
}

// replayOrigins calls fn for every record of the uncompressed batches in raw, with the batch
// it came from (a control batch's record is its marker key), and returns the offset after the
// last batch.
func replayOrigins(raw []byte, fn func(batchOrigin, record) error) (int64, error) {
	var next int64
	for len(raw) >= batchHeaderLen {
		size := 12 + int(int32(binary.BigEndian.Uint32(raw[batchLength:])))
		if size < batchHeaderLen || size > len(raw) {
			return next, fmt.Errorf("bad batch length %d", size)
		}
		b := raw[:size]
		raw = raw[size:]
		base := int64(binary.BigEndian.Uint64(b[batchBaseOffset:]))
		next = base + int64(int32(binary.BigEndian.Uint32(b[batchLastOffsetDelta:]))) + 1
		attrs := binary.BigEndian.Uint16(b[batchAttributes:])
		if attrs&attrCompressionMask != 0 {
			continue // the coordinators never compress
		}
		origin := batchOrigin{producerID: int64(binary.BigEndian.Uint64(b[batchProducerID:])),
			transactional: attrs&attrTransactional != 0, control: attrs&attrControl != 0}
		n := int(int32(binary.BigEndian.Uint32(b[batchNumRecords:])))
		r := kbin.Reader{Src: b[batchHeaderLen:]}
		for range n {
			l := r.Varint()
			rec := kbin.Reader{Src: r.Span(int(l))}
			rec.Int8()
			rec.Varlong()
			rec.Varint()
			var kv record
			if kl := rec.Varint(); kl >= 0 {
				kv.key = rec.Span(int(kl))
			}
			if vl := rec.Varint(); vl >= 0 {
				kv.value = append([]byte{}, rec.Span(int(vl))...)
			}
			if !r.Ok() || !rec.Ok() {
				return next, fmt.Errorf("truncated record in batch at offset %d", base)
			}
			if origin.control {
				// The control record key: version int16, type int16 (0 abort, 1 commit).
				origin.commit = len(kv.key) >= 4 && binary.BigEndian.Uint16(kv.key[2:]) == 1
			}
			if err := fn(origin, kv); err != nil {
				return next, err
			}
		}
	}
	return next, nil
}

// applyRecord applies one __consumer_offsets record to the groups being loaded.
func applyRecord(get func(string) *group.Group, groups map[string]*group.Group, r record, now time.Time) error {
	if len(r.key) < 2 {
		return fmt.Errorf("record key of %d bytes", len(r.key))
	}
	switch version := int16(binary.BigEndian.Uint16(r.key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.key); err != nil {
			return fmt.Errorf("offset commit key: %w", err)
		}
		tp := group.TopicPartition{Topic: k.Topic, Partition: k.Partition}
		if r.value == nil {
			if g := groups[k.Group]; g != nil {
				delete(g.Offsets, tp)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.value); err != nil {
			return fmt.Errorf("offset commit value: %w", err)
		}
		get(k.Group).Offsets[tp] = group.Offset{Offset: v.Offset, LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata, CommitTime: v.CommitTimestamp}
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.key); err != nil {
			return fmt.Errorf("group metadata key: %w", err)
		}
		if r.value == nil {
			if g := groups[k.Group]; g != nil {
				offsets := g.Offsets
				g = group.New(k.Group, g.Config(), now)
				g.Offsets = offsets
				groups[k.Group] = g
			}
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(r.value); err != nil {
			return fmt.Errorf("group metadata value: %w", err)
		}
		old := get(k.Group)
		g := group.New(k.Group, old.Config(), now)
		g.Offsets = old.Offsets
		g.ProtocolType, g.Generation = v.ProtocolType, v.Generation
		if v.Protocol != nil {
			g.Protocol = *v.Protocol
		}
		if v.Leader != nil {
			g.Leader = *v.Leader
		}
		for _, vm := range v.Members {
			m := &group.Member{ID: vm.MemberID, ClientID: vm.ClientID, ClientHost: vm.ClientHost,
				SessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
				RebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
				Protocols:        []group.Protocol{{Name: g.Protocol, Metadata: vm.Subscription}},
				Assignment:       vm.Assignment}
			if vm.InstanceID != nil {
				m.InstanceID = *vm.InstanceID
			}
			g.Restore(m, now)
		}
		groups[k.Group] = g
	default:
		// Other key versions belong to newer protocols (share groups, KIP-848); skip them.
	}
	return nil
}
