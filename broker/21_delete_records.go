package broker

// DeleteRecords (key 21), versions 0-2.
//
// Behaviour: on each partition's leader, as Kafka's deleteRecordsOnLeader, advances the log
// start offset to Offset (-1: the high watermark) and deletes the segments wholly below it;
// an offset below 0 or above the high watermark is OFFSET_OUT_OF_RANGE, an offset at or
// below the log start offset changes nothing, and a topic whose cleanup.policy lacks "delete"
// is POLICY_VIOLATION. The new log start offset is checkpointed (it survives restarts);
// ListOffsets earliest and Fetch (OFFSET_OUT_OF_RANGE below it) see it at once, and followers
// take it from the LogStartOffset of their fetch responses and report theirs in their fetch
// requests. The answer waits, up to TimeoutMillis, until the low watermark (the smallest log
// start offset over the leader and its replicas on live brokers, Kafka's
// lowWatermarkIfLeader) reaches the offset, and carries that low watermark; REQUEST_TIMED_OUT
// when it does not in time. NOT_LEADER_OR_FOLLOWER when this broker does not lead the
// partition or stops leading it while waiting; UNKNOWN_TOPIC_OR_PARTITION for partitions
// that do not exist. What differs from Kafka: nothing a client can observe (segments go at
// once rather than at the next retention check).

import (
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteRecords(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	type waiting struct {
		topic, part int
		p           *partition
		offset      int64
	}
	var waits []waiting
	for ti, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			p, err := c.b.leaderOf(c.b.partitionFor(rt.Topic, rp.Partition))
			var offset int64
			if err == nil {
				offset, err = c.b.deleteRecords(p, rp.Offset)
			}
			if err != nil {
				sp.ErrorCode = err.Code
			} else {
				sp.LowWatermark, _ = c.b.lowWatermark(p)
				waits = append(waits, waiting{ti, pi, p, offset})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	deadline := time.NewTimer(time.Duration(max(r.TimeoutMillis, 0)) * time.Millisecond)
	defer deadline.Stop()
	for len(waits) > 0 {
		woken := c.b.arrivals.wait()
		pending := waits[:0]
		for _, w := range waits {
			sp := &resp.Topics[w.topic].Partitions[w.part]
			switch low, leader := c.b.lowWatermark(w.p); {
			case !leader:
				sp.ErrorCode, sp.LowWatermark = kerr.NotLeaderForPartition.Code, -1
			case low >= w.offset:
				sp.LowWatermark = low
			default:
				pending = append(pending, w)
			}
		}
		waits = pending
		if len(waits) == 0 {
			break
		}
		select {
		case <-woken:
		case <-deadline.C:
			for _, w := range waits {
				resp.Topics[w.topic].Partitions[w.part].ErrorCode = kerr.RequestTimedOut.Code
			}
			return resp, nil
		case <-c.b.stop:
			return nil, errCloseConn
		}
	}
	return resp, nil
}

// deleteRecords advances the log start offset of p, which this broker leads, to offset (-1:
// the high watermark) and returns the offset it aimed for.
func (b *Broker) deleteRecords(p *partition, offset int64) (int64, *kerr.Error) {
	b.mu.RLock()
	policy := p.topic.props(b).get("cleanup.policy")
	b.mu.RUnlock()
	if !strings.Contains(policy, "delete") {
		return 0, kerr.PolicyViolation
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.rs.IsLeader() {
		return 0, kerr.NotLeaderForPartition
	}
	hw := p.rs.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return 0, kerr.OffsetOutOfRange
	}
	if err := p.log.IncrementLogStartOffset(offset); err != nil {
		return 0, storageError(err)
	}
	return offset, nil
}

// lowWatermark returns p's low watermark (replica.Partition.LowWatermark over the brokers
// live in the applied image) and whether this broker leads p.
func (b *Broker) lowWatermark(p *partition) (int64, bool) {
	img := b.cl.img.Load()
	if img == nil {
		img = b.cl.ctl.Image()
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.rs.IsLeader() {
		return -1, false
	}
	return p.rs.LowWatermark(p.log.LogStartOffset(), img.Live), true
}
