package broker

import (
	"maps"
	"os"
	"slices"
	"time"

	"github.com/kchaos/kchaos/broker/controller"
)

// applyImage makes the local partitions match a metadata image: it opens the logs of
// partitions assigned to this broker, deletes those of deleted topics, and moves each hosted
// partition to its leader, leader epoch, replicas and ISR — becoming leader or follower.
func (b *Broker) applyImage(img *controller.Image) {
	self := b.cfg.NodeID
	type change struct {
		p  *partition
		ip *controller.Partition
	}
	var changes []change
	var gone []*topic
	b.mu.Lock()
	for name, t := range b.topics {
		if it := img.Topics[name]; it == nil || it.ID != controller.TopicID(t.id) {
			gone = append(gone, t)
			delete(b.topics, name)
			delete(b.topicsByID, t.id)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
		it := img.Topics[name]
		t := b.topics[name]
		if t == nil {
			hosts := false
			for _, ip := range it.Partitions {
				hosts = hosts || slices.Contains(ip.Replicas, self)
			}
			if !hosts {
				continue
			}
			t = &topic{name: name, id: it.ID, configs: map[string]string{}}
			b.topics[name] = t
			b.topicsByID[t.id] = t
		}
		if !maps.Equal(t.configs, it.Configs) {
			t.configs = maps.Clone(it.Configs)
			if t.configs == nil {
				t.configs = map[string]string{}
			}
			cfg := t.props(b).storageConfig()
			for _, p := range t.partitions {
				if p != nil {
					p.log.SetConfig(cfg)
				}
			}
		}
		minISR := int(t.props(b).int("min.insync.replicas"))
		for i, ip := range it.Partitions {
			if !slices.Contains(ip.Replicas, self) {
				continue
			}
			for len(t.partitions) <= i {
				t.partitions = append(t.partitions, nil)
			}
			p := t.partitions[i]
			if p == nil {
				var err error
				if p, err = b.openPartition(t, int32(i)); err != nil {
					b.log.Error("open partition", "topic", name, "partition", i, "err", err)
					continue
				}
				p.leader = controller.NoLeader
				p.leaderEpoch = -1
				t.partitions[i] = p
				b.metrics.partitions.Inc()
			}
			p.mu.Lock()
			p.minISR = minISR
			p.mu.Unlock()
			changes = append(changes, change{p, ip})
		}
	}
	b.mu.Unlock()
	for _, t := range gone {
		b.dropTopic(t)
	}
	for _, c := range changes {
		b.applyPartition(c.p, c.ip)
	}
}

// openPartition opens (recovering) the log of partition i of t. In cluster mode the high
// watermark starts at the log start offset and is learned from the leader or, as leader, from
// the followers. Broker.mu must be held.
func (b *Broker) openPartition(t *topic, i int32) (*partition, error) {
	l, dir, err := b.openLog(t, i)
	if err != nil {
		return nil, err
	}
	p := &partition{topic: t, index: i, log: l, dataDir: dir, minISR: 1}
	p.highWatermark.Store(l.LogStartOffset())
	return p, nil
}

// applyPartition moves one hosted partition to the state the controller decided.
func (b *Broker) applyPartition(p *partition, ip *controller.Partition) {
	self := b.cfg.NodeID
	p.mu.Lock()
	if ip.PartitionEpoch < p.partitionEpoch && ip.LeaderEpoch <= p.leaderEpoch {
		p.mu.Unlock()
		return // an AlterPartition answer already moved us past this image
	}
	wasLeader := p.leader == self
	newEpoch := ip.LeaderEpoch != p.leaderEpoch
	p.replicas, p.isr = slices.Clone(ip.Replicas), slices.Clone(ip.ISR)
	p.partitionEpoch, p.leader, p.leaderEpoch = ip.PartitionEpoch, ip.Leader, ip.LeaderEpoch
	isLeader := ip.Leader == self
	becameLeader := isLeader && (!wasLeader || newEpoch)
	if becameLeader {
		now := time.Now()
		p.followers = map[int32]*followerState{}
		for _, r := range ip.Replicas {
			if r != self {
				fs := &followerState{leo: -1, lastFetchLeaderLEO: -1}
				if slices.Contains(ip.ISR, r) {
					fs.lastCaughtUp = now
				}
				p.followers[r] = fs
			}
		}
		p.pendingISR = nil
		p.epochStart = p.log.LogEndOffset()
	}
	if !isLeader {
		p.followers, p.pendingISR = nil, nil
	}
	p.mu.Unlock()

	offsets := p.topic.name == offsetsTopic
	txnState := p.topic.name == txnStateTopic
	switch {
	case becameLeader:
		if err := p.log.AssignEpoch(ip.LeaderEpoch); err != nil {
			b.log.Error("assign leader epoch", "topic", p.topic.name, "partition", p.index, "err", err)
		}
		b.cl.follow(p, controller.NoLeader)
		b.log.Info("became leader", "topic", p.topic.name, "partition", p.index, "epoch", ip.LeaderEpoch, "isr", ip.ISR, "leo", p.LogEndOffset())
		b.updateHighWatermark(p)
		if offsets {
			b.groups.handOff(func() {
				if err := b.groups.loadPartition(p.index); err != nil {
					b.log.Error("load groups", "partition", p.index, "err", err)
				}
			})
		}
		if txnState {
			b.txns.handOff(func() {
				if err := b.txns.loadPartition(p.index); err != nil {
					b.log.Error("load transactions", "partition", p.index, "err", err)
				}
			})
		}
	case !isLeader:
		if wasLeader {
			b.log.Info("lost leadership", "topic", p.topic.name, "partition", p.index, "new_leader", ip.Leader, "epoch", ip.LeaderEpoch)
			if offsets {
				b.groups.handOff(func() { b.groups.unloadPartition(p.index) })
			}
			if txnState {
				b.txns.handOff(func() { b.txns.unloadPartition(p.index) })
			}
		}
		b.cl.follow(p, ip.Leader)
	default:
		b.updateHighWatermark(p)
	}
	b.arrivals.notify()
}

// dropTopic closes and deletes the local logs of a topic the controller deleted.
func (b *Broker) dropTopic(t *topic) {
	for _, p := range t.partitions {
		if p == nil {
			continue
		}
		b.cl.follow(p, controller.NoLeader)
		if err := p.log.Delete(); err != nil {
			b.log.Warn("delete partition", "topic", t.name, "partition", p.index, "err", err)
		}
		os.RemoveAll(p.dataDir)
		b.metrics.partitions.Dec()
	}
	b.log.Info("deleted topic", "topic", t.name)
}
