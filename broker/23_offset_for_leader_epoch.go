package broker

// OffsetForLeaderEpoch (key 23), versions 2-4.
//
// Behaviour (KIP-101, KIP-279; the consumer side, used after a leader change to detect log
// truncation): for each partition, the largest leader epoch at or below the requested one and
// the end offset of that epoch (the start offset of the next epoch, or the log end offset for
// the current epoch), from the log's leader-epoch cache. An epoch older than every cached one
// answers epoch -1 and offset -1 (UNDEFINED). CurrentLeaderEpoch is checked as in Fetch.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, err := c.b.leaderOf(c.b.partitionFor(rt.Topic, rp.Partition))
			if err == nil {
				epoch := p.LeaderEpoch()
				switch {
				case rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < epoch:
					err = kerr.FencedLeaderEpoch
				case rp.CurrentLeaderEpoch > epoch:
					err = kerr.UnknownLeaderEpoch
				default:
					sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
				}
			}
			if err != nil {
				sp.ErrorCode = err.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
