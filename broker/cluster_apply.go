package broker

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kchaos/kchaos/broker/controller"
	"github.com/kchaos/kchaos/broker/replica"
	"github.com/kchaos/kchaos/broker/storage"
)

// applyImage makes the local partitions match a metadata image: it installs this broker's
// dynamic configs, opens the logs of partitions assigned to this broker, deletes those of
// deleted topics and of partitions reassigned away from it, and moves each hosted partition to
// its leader, leader epoch, replicas and ISR — becoming leader or follower.
func (b *Broker) applyImage(img *controller.Image) {
	self := b.cfg.NodeID
	type change struct {
		p      *partition
		ip     *controller.Partition
		minISR int
	}
	var changes, removed []change
	var gone []*topic
	b.mu.Lock()
	dynamicChanged := b.cfg.applyDynamic(img)
	if dynamicChanged {
		b.log.Info("dynamic broker configs changed", "broker", img.BrokerConfigs[strconv.Itoa(int(self))], "cluster_default", img.BrokerConfigs[""])
	}
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
		if topicChanged := !maps.Equal(t.configs, it.Configs); topicChanged || dynamicChanged {
			if topicChanged {
				t.configs = maps.Clone(it.Configs)
				if t.configs == nil {
					t.configs = map[string]string{}
				}
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
				if i < len(t.partitions) && t.partitions[i] != nil {
					removed = append(removed, change{t.partitions[i], ip, minISR})
					t.partitions[i] = nil
				}
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
	for _, c := range removed {
		b.removePartition(c.p, c.ip, c.minISR)
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
	c := p.assign(ip, minISR, b.now())
	if c.Stale {
		return // an AlterPartition answer already moved us past this image
	}
	switch {
	case c.BecameLeader:
		if err := p.log.AssignEpoch(ip.LeaderEpoch); err != nil {
			b.log.Error("assign leader epoch", "topic", p.topic.name, "partition", p.index, "err", err)
		}
		b.cl.follow(p, controller.NoLeader)
		b.log.Info("became leader", "topic", p.topic.name, "partition", p.index, "epoch", ip.LeaderEpoch, "isr", ip.ISR, "leo", p.LogEndOffset())
		if p.topic.name == offsetsTopic {
			b.groups.handOff(func() {
				if err := b.groups.loadPartition(p.index); err != nil {
					b.log.Error("load groups", "partition", p.index, "err", err)
				}
			})
		}
		if p.topic.name == txnStateTopic {
			b.txns.handOff(func() {
				if err := b.txns.loadPartition(p.index); err != nil {
					b.log.Error("load transactions", "partition", p.index, "err", err)
				}
			})
		}
	case ip.Leader != b.cfg.NodeID:
		if c.LostLeadership {
			b.lostLeadership(p, ip)
		}
		b.cl.follow(p, ip.Leader)
	}
	b.arrivals.notify()
}

// lostLeadership logs that this broker no longer leads p and unloads the coordinators'
// state of an internal partition.
func (b *Broker) lostLeadership(p *partition, ip *controller.Partition) {
	b.log.Info("lost leadership", "topic", p.topic.name, "partition", p.index, "new_leader", ip.Leader, "epoch", ip.LeaderEpoch)
	switch p.topic.name {
	case offsetsTopic:
		b.groups.handOff(func() { b.groups.unloadPartition(p.index) })
	case txnStateTopic:
		b.txns.handOff(func() { b.txns.unloadPartition(p.index) })
	}
}

// assign feeds the controller's decision for p to its replica state machine and publishes
// the high watermark.
func (p *partition) assign(ip *controller.Partition, minISR int, now time.Time) replica.Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.rs.Apply(replica.Assignment{Leader: ip.Leader, LeaderEpoch: ip.LeaderEpoch, PartitionEpoch: ip.PartitionEpoch,
		Replicas: ip.Replicas, ISR: ip.ISR}, minISR, p.log.LogEndOffset(), now)
	p.publish()
	return c
}

// removePartition stops hosting a partition reassigned away from this broker (KIP-455): the
// replica state learns the new assignment (a removed leader loses its leadership, so waiting
// acks=all requests end with NOT_LEADER_OR_FOLLOWER), fetching stops, and the log is
// deleted.
func (b *Broker) removePartition(p *partition, ip *controller.Partition, minISR int) {
	c := p.assign(ip, minISR, b.now())
	if c.LostLeadership {
		b.lostLeadership(p, ip)
	}
	b.cl.follow(p, controller.NoLeader)
	b.arrivals.notify()
	b.deleteLog(p)
	b.log.Info("removed replica", "topic", p.topic.name, "partition", p.index, "replicas", ip.Replicas)
}

// deleteLog deletes a partition's log and directory once no follower fetch is applying to it.
func (b *Broker) deleteLog(p *partition) {
	p.appendMu.Lock()
	p.dropped = true
	err := p.log.Delete()
	p.appendMu.Unlock()
	if err != nil {
		b.log.Warn("delete partition", "topic", p.topic.name, "partition", p.index, "err", err)
	}
	os.RemoveAll(p.dataDir)
	b.metrics.partitions.Dec()
}

// dropTopic closes and deletes the local logs of a topic the controller deleted.
func (b *Broker) dropTopic(t *topic) {
	for _, p := range t.partitions {
		if p == nil {
			continue
		}
		b.cl.follow(p, controller.NoLeader)
		b.deleteLog(p)
	}
	b.log.Info("deleted topic", "topic", t.name)
}

// removeStrayLogs deletes partition directories in the data directory that this broker no
// longer hosts once it has caught up with the metadata log: partitions reassigned away and
// topics deleted while it was down (Kafka's stray logs, KAFKA-14616). A partition directory is
// TOPIC-N holding a log (storage.IsLogDir).
func (b *Broker) removeStrayLogs() {
	entries, err := os.ReadDir(b.cfg.DataDir)
	if err != nil {
		b.log.Warn("scan for stray logs", "err", err)
		return
	}
	img := b.cl.img.Load()
	if img == nil {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, e := range entries {
		i := strings.LastIndexByte(e.Name(), '-')
		if !e.IsDir() || i < 0 {
			continue
		}
		name := e.Name()[:i]
		n, err := strconv.Atoi(e.Name()[i+1:])
		if err != nil || n < 0 || validTopicName(name) != nil {
			continue
		}
		dir := filepath.Join(b.cfg.DataDir, e.Name())
		if !storage.IsLogDir(dir) {
			continue
		}
		if t := b.topics[name]; t != nil && n < len(t.partitions) && t.partitions[n] != nil {
			continue
		}
		if ip := img.Partition(name, int32(n)); ip != nil && slices.Contains(ip.Replicas, b.cfg.NodeID) {
			continue // assigned here but not open (an open failed): keep the data
		}
		if err := os.RemoveAll(dir); err != nil {
			b.log.Warn("remove stray log", "dir", dir, "err", err)
			continue
		}
		b.log.Info("removed stray log", "dir", dir)
	}
}
