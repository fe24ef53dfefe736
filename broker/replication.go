package broker

// Leader side of Kafka's ISR replication, driving the state machine in broker/replica:
// follower progress from replica fetches, ISR shrink and expand through the controller
// (AlterPartition, KIP-497), and acks=all waiting. The decisions are replica's; this file
// feeds it, sends its proposals and wakes the requests waiting on the high watermark.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
	"github.com/kchaos/kchaos/broker/replica"
)

// onFollowerFetch records a replica fetch of p by follower replica at fetchOffset (its log end
// offset) with its log start offset, advances the high watermark if it can, and sends the ISR
// expansion the state machine proposes.
func (b *Broker) onFollowerFetch(p *partition, replica int32, fetchOffset, logStartOffset int64, now time.Time) {
	p.mu.Lock()
	moved, prop := p.rs.FollowerFetch(replica, fetchOffset, p.log.LogEndOffset(), now)
	lsoMoved := p.rs.FollowerLogStartOffset(replica, logStartOffset)
	p.publish()
	p.mu.Unlock()
	if moved || lsoMoved {
		b.arrivals.notify()
	}
	if prop != nil {
		b.alterISR(p, prop)
	}
}

// alterISR sends an ISR change the state machine proposed to the controller in the
// background and feeds the answer back.
func (b *Broker) alterISR(p *partition, prop *replica.Proposal) {
	req := controller.AlterPartitionRequest{Topic: p.topic.name, TopicID: controller.TopicID(p.topic.id), Partition: p.index,
		BrokerID: b.cfg.NodeID, BrokerEpoch: b.cl.brokerEpoch.Load(), LeaderEpoch: prop.LeaderEpoch,
		PartitionEpoch: prop.PartitionEpoch, NewISR: prop.ISR}
	_, _, _, old := p.state()
	b.bgWG.Add(1)
	go func() {
		defer b.bgWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		defer cancel()
		res, err := b.cl.alterPartition(ctx, req)
		var answer *replica.Assignment
		if err == nil {
			answer = &replica.Assignment{Leader: res.Leader, LeaderEpoch: res.LeaderEpoch, PartitionEpoch: res.PartitionEpoch, ISR: res.ISR}
		}
		p.mu.Lock()
		applied, moved := p.rs.AlterPartitionDone(*prop, answer, p.log.LogEndOffset())
		p.publish()
		p.mu.Unlock()
		switch {
		case err != nil:
			b.log.Info("ISR change refused", "topic", p.topic.name, "partition", p.index, "isr", old, "proposed", prop.ISR, "err", err)
		case applied:
			b.log.Info("ISR changed", "topic", p.topic.name, "partition", p.index, "from", old, "to", res.ISR)
			if len(res.ISR) < len(old) {
				b.metrics.isrShrinks.Inc()
			} else {
				b.metrics.isrExpands.Inc()
			}
		}
		if moved || applied {
			b.arrivals.notify()
		}
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

// isrLoop asks the state machine of every partition this broker leads for an ISR shrink
// every replica.lag.time.max.ms / 2 (Kafka's out-of-sync rule) and sends what it proposes.
func (cl *cluster) isrLoop() {
	defer cl.b.bgWG.Done()
	maxLag := time.Duration(cl.b.cfg.propInt("replica.lag.time.max.ms")) * time.Millisecond
	t := time.NewTicker(max(maxLag/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-cl.b.stop:
			return
		case <-t.C:
			now := cl.b.now()
			for _, p := range cl.b.allPartitions() {
				p.mu.Lock()
				prop := p.rs.Tick(p.log.LogEndOffset(), now, maxLag)
				p.mu.Unlock()
				if prop != nil {
					cl.b.alterISR(p, prop)
				}
			}
		}
	}
}

// waitReplicated waits until the state machine says an acks=all request for lastOffset is done
// (replica.Partition.CheckAcks), as Kafka's produce purgatory does: nil once the high
// watermark passed it, NOT_LEADER_OR_FOLLOWER when leadership moves,
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR falls below min.insync.replicas, and
// REQUEST_TIMED_OUT at the deadline.
func (b *Broker) waitReplicated(p *partition, lastOffset int64, deadline <-chan time.Time) *kerr.Error {
	for {
		woken := b.arrivals.wait()
		p.mu.RLock()
		done, err := p.rs.CheckAcks(lastOffset)
		p.mu.RUnlock()
		if done {
			return err
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
