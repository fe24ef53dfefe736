package broker

// Leader side of Kafka's ISR replication: follower progress from replica fetches, the high
// watermark, ISR shrink and expand through the controller (AlterPartition, KIP-497), and
// acks=all waiting.

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

// onFollowerFetch records a replica fetch of p by follower replica at fetchOffset (its log end
// offset), advances the high watermark if it can, and proposes adding the follower to the ISR
// once it has caught up to the high watermark within the current leader epoch.
func (b *Broker) onFollowerFetch(p *partition, replica int32, fetchOffset int64, now time.Time) {
	p.mu.Lock()
	fs := p.followers[replica]
	if p.leader != b.cfg.NodeID || fs == nil {
		p.mu.Unlock()
		return
	}
	leo := p.log.LogEndOffset()
	if fetchOffset >= leo {
		fs.lastCaughtUp = now
	} else if fetchOffset >= fs.lastFetchLeaderLEO && fs.lastFetch.After(fs.lastCaughtUp) {
		fs.lastCaughtUp = fs.lastFetch
	}
	fs.leo, fs.lastFetch, fs.lastFetchLeaderLEO = fetchOffset, now, leo
	moved := p.updateHighWatermarkLocked(leo)
	var expand []int32
	if !slices.Contains(p.isr, replica) && p.pendingISR == nil && fetchOffset >= p.HighWatermark() && fetchOffset >= p.epochStart {
		expand = append(slices.Clone(p.isr), replica)
	}
	p.mu.Unlock()
	if moved {
		b.arrivals.notify()
	}
	if expand != nil {
		b.alterISR(p, expand)
	}
}

// updateHighWatermarkLocked moves the leader's high watermark to the smallest log end offset
// over the ISR (the committed one and any proposed in flight), never backwards, and not at
// all while the ISR is smaller than min.insync.replicas (KIP-966's strict min ISR). leo is the
// leader's log end offset. p.mu must be held.
func (p *partition) updateHighWatermarkLocked(leo int64) bool {
	if len(p.isr) < p.minISR {
		return false
	}
	hw := leo
	for _, set := range [][]int32{p.isr, p.pendingISR} {
		for _, r := range set {
			if r == p.leader {
				continue
			}
			fs := p.followers[r]
			if fs == nil || fs.leo < 0 {
				return false
			}
			hw = min(hw, fs.leo)
		}
	}
	return p.advanceHighWatermark(hw)
}

// updateHighWatermark is updateHighWatermarkLocked for a leader, taking the lock, and
// wakes waiters when the high watermark moved.
func (b *Broker) updateHighWatermark(p *partition) {
	p.mu.Lock()
	moved := p.leader == b.cfg.NodeID && p.updateHighWatermarkLocked(p.log.LogEndOffset())
	p.mu.Unlock()
	if moved {
		b.arrivals.notify()
	}
}

// alterISR proposes newISR for p to the controller, unless a proposal is already in flight,
// and applies the controller's answer. It returns at once; the proposal runs in the
// background.
func (b *Broker) alterISR(p *partition, newISR []int32) {
	p.mu.Lock()
	if p.pendingISR != nil || p.leader != b.cfg.NodeID || b.cl == nil {
		p.mu.Unlock()
		return
	}
	p.pendingISR = newISR
	req := controller.AlterPartitionRequest{Topic: p.topic.name, TopicID: controller.TopicID(p.topic.id), Partition: p.index,
		BrokerID: b.cfg.NodeID, BrokerEpoch: b.cl.brokerEpoch.Load(), LeaderEpoch: p.leaderEpoch,
		PartitionEpoch: p.partitionEpoch, NewISR: newISR}
	old := slices.Clone(p.isr)
	p.mu.Unlock()
	b.bgWG.Add(1)
	go func() {
		defer b.bgWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		defer cancel()
		res, err := b.cl.alterPartition(ctx, req)
		p.mu.Lock()
		p.pendingISR = nil
		applied := err == nil && res.LeaderEpoch == p.leaderEpoch && res.PartitionEpoch > p.partitionEpoch
		if applied {
			p.isr, p.partitionEpoch = res.ISR, res.PartitionEpoch
		}
		p.mu.Unlock()
		switch {
		case err != nil:
			b.log.Info("ISR change refused", "topic", p.topic.name, "partition", p.index, "isr", old, "proposed", newISR, "err", err)
		case applied:
			b.log.Info("ISR changed", "topic", p.topic.name, "partition", p.index, "from", old, "to", res.ISR)
			if len(res.ISR) < len(old) {
				b.metrics.isrShrinks.Inc()
			} else {
				b.metrics.isrExpands.Inc()
			}
		}
		b.updateHighWatermark(p)
		b.arrivals.notify()
	}()
}

// alterPartition sends an ISR change to the active controller (or applies it here when this
// node is the active controller) and returns the partition's new state.
func (cl *cluster) alterPartition(ctx context.Context, req controller.AlterPartitionRequest) (controller.Partition, error) {
	kr := kmsg.NewPtrAlterPartitionRequest()
	kr.Version = 1
	kr.BrokerID, kr.BrokerEpoch = req.BrokerID, req.BrokerEpoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.Topic = req.Topic
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.NewISR, rp.PartitionEpoch = req.Partition, req.LeaderEpoch, req.NewISR, req.PartitionEpoch
	rt.Partitions = append(rt.Partitions, rp)
	kr.Topics = append(kr.Topics, rt)
	partErr := func(r kmsg.Response) (*kmsg.AlterPartitionResponseTopicPartition, int16) {
		ar := r.(*kmsg.AlterPartitionResponse)
		if ar.ErrorCode != 0 || len(ar.Topics) != 1 || len(ar.Topics[0].Partitions) != 1 {
			return nil, max(ar.ErrorCode, kerr.UnknownServerError.Code)
		}
		p := &ar.Topics[0].Partitions[0]
		return p, p.ErrorCode
	}
	resp, err := cl.toController(ctx, alterPartitionChannel, kr, func(r kmsg.Response) bool {
		_, code := partErr(r)
		return code == kerr.NotController.Code
	})
	if errors.Is(err, errLocalController) {
		return cl.ctl.AlterPartition(req)
	}
	if err != nil {
		return controller.Partition{}, err
	}
	p, code := partErr(resp)
	if code != 0 {
		return controller.Partition{}, kerr.ErrorForCode(code)
	}
	return controller.Partition{Leader: p.LeaderID, LeaderEpoch: p.LeaderEpoch, ISR: p.ISR, PartitionEpoch: p.PartitionEpoch}, nil
}

// isrLoop shrinks the ISR of partitions this broker leads: every replica.lag.time.max.ms / 2
// it removes followers that are behind the leader's log end offset and have not been caught up
// for replica.lag.time.max.ms (Kafka's out-of-sync rule).
func (cl *cluster) isrLoop() {
	defer cl.b.bgWG.Done()
	maxLag := time.Duration(cl.b.cfg.propInt("replica.lag.time.max.ms")) * time.Millisecond
	t := time.NewTicker(max(maxLag/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-cl.b.stop:
			return
		case now := <-t.C:
			for _, p := range cl.b.allPartitions() {
				if shrunk := cl.b.outOfSync(p, now, maxLag); shrunk != nil {
					cl.b.alterISR(p, shrunk)
				}
			}
		}
	}
}

// outOfSync returns p's ISR without its out-of-sync followers, or nil when all are in sync or
// this broker does not lead p.
func (b *Broker) outOfSync(p *partition, now time.Time, maxLag time.Duration) []int32 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.leader != b.cfg.NodeID || p.pendingISR != nil {
		return nil
	}
	leo := p.log.LogEndOffset()
	keep := make([]int32, 0, len(p.isr))
	for _, r := range p.isr {
		fs := p.followers[r]
		if r != p.leader && fs != nil && fs.leo != leo && now.Sub(fs.lastCaughtUp) > maxLag {
			continue
		}
		keep = append(keep, r)
	}
	if len(keep) == len(p.isr) {
		return nil
	}
	return keep
}

// waitReplicated waits until p's high watermark passes lastOffset (acks=all), as Kafka's
// produce purgatory does. Errors: NOT_LEADER_OR_FOLLOWER when leadership moves,
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR falls below min.insync.replicas, and
// REQUEST_TIMED_OUT at the deadline.
func (b *Broker) waitReplicated(p *partition, lastOffset int64, deadline <-chan time.Time) *kerr.Error {
	for {
		woken := b.arrivals.wait()
		p.mu.RLock()
		leader, isr, minISR := p.leader, len(p.isr), p.minISR
		p.mu.RUnlock()
		switch {
		case leader != b.cfg.NodeID:
			return kerr.NotLeaderForPartition
		case isr < minISR:
			return kerr.NotEnoughReplicasAfterAppend
		case p.HighWatermark() > lastOffset:
			return nil
		}
		select {
		case <-woken:
		case <-deadline:
			return kerr.RequestTimedOut
		case <-b.stop:
			return kerr.NotLeaderForPartition
		}
	}
}
