package broker

import (
	"maps"
	"os"
	"slices"

	"github.com/kchaos/kchaos/broker/controller"
	"github.com/kchaos/kchaos/broker/replica"
)

// applyImage makes the local partitions match a metadata image: it opens the logs of
// partitions assigned to this broker, deletes those of deleted topics, and moves each hosted
// partition to its leader, leader epoch, replicas and ISR — becoming leader or follower.
func (b *Broker) applyImage(img *controller.Image) {
	self := b.cfg.NodeID
	type change struct {
		p      *partition
		ip     *controller.Partition
		minISR int
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
				t.partitions[i] = p
				b.metrics.partitions.Inc()
			}
			changes = append(changes, change{p, ip, minISR})
		}
	}
	b.mu.Unlock()
	for _, t := range gone {
		b.dropTopic(t)
	}
	for _, c := range changes {
		b.applyPartition(c.p, c.ip, c.minISR)
	}
}

// openPartition opens (recovering) the log of partition i of t, leading nothing until the
// image says otherwise. Broker.mu must be held.
func (b *Broker) openPartition(t *topic, i int32) (*partition, error) {
	l, dir, err := b.openLog(t, i)
	if err != nil {
		return nil, err
	}
	return newPartition(b.cfg.NodeID, t, i, l, dir), nil
}

// applyPartition moves one hosted partition to the state the controller decided, with the
// topic's min.insync.replicas, and acts on the transition the state machine reports: a new
// leader stamps its epoch into the log, stops fetching and loads the coordinators' state of
// internal partitions; a follower fetches from the leader; a former leader unloads them.
func (b *Broker) applyPartition(p *partition, ip *controller.Partition, minISR int) {
	p.mu.Lock()
	c := p.rs.Apply(replica.Assignment{Leader: ip.Leader, LeaderEpoch: ip.LeaderEpoch, PartitionEpoch: ip.PartitionEpoch,
		Replicas: ip.Replicas, ISR: ip.ISR}, minISR, p.log.LogEndOffset(), b.now())
	p.publish()
	p.mu.Unlock()
	if c.Stale {
		return // an AlterPartition answer already moved us past this image
	}
	offsets := p.topic.name == offsetsTopic
	txnState := p.topic.name == txnStateTopic
	switch {
	case c.BecameLeader:
		if err := p.log.AssignEpoch(ip.LeaderEpoch); err != nil {
			b.log.Error("assign leader epoch", "topic", p.topic.name, "partition", p.index, "err", err)
		}
		b.cl.follow(p, controller.NoLeader)
		b.log.Info("became leader", "topic", p.topic.name, "partition", p.index, "epoch", ip.LeaderEpoch, "isr", ip.ISR, "leo", p.LogEndOffset())
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
	case ip.Leader != b.cfg.NodeID:
		if c.LostLeadership {
			b.log.Info("lost leadership", "topic", p.topic.name, "partition", p.index, "new_leader", ip.Leader, "epoch", ip.LeaderEpoch)
			if offsets {
				b.groups.handOff(func() { b.groups.unloadPartition(p.index) })
			}
			if txnState {
				b.txns.handOff(func() { b.txns.unloadPartition(p.index) })
			}
		}
		b.cl.follow(p, ip.Leader)
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
