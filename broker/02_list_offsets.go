package broker

// ListOffsets (key 2), versions 0-6.
//
// Behaviour: Timestamp -1 (latest) answers the high watermark (read_uncommitted) or the last
// stable offset (read_committed); -2 (earliest) the log start offset; a timestamp >= 0 the
// first offset whose batch has a timestamp at or after it, or -1 when none is below the high
// watermark. v0 answers OldStyleOffsets (at most MaxNumOffsets, newest first). CurrentLeaderEpoch
// (v4+) is checked as in Fetch. Differences from Kafka: no max-timestamp (-3) lookups (v7+ is
// not advertised).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListOffsets(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			p, err := c.b.leaderOf(c.b.partitionFor(rt.Topic, rp.Partition))
			if err == nil {
				err = listOffset(p, rp, &sp, req.version, r.IsolationLevel == 1)
			}
			if err != nil {
				sp.ErrorCode = err.Code
				sp.Offset, sp.Timestamp = -1, -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func listOffset(p *partition, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition, version int16, readCommitted bool) *kerr.Error {
	epoch := p.LeaderEpoch()
	if rp.CurrentLeaderEpoch >= 0 {
		if rp.CurrentLeaderEpoch < epoch {
			return kerr.FencedLeaderEpoch
		}
		if rp.CurrentLeaderEpoch > epoch {
			return kerr.UnknownLeaderEpoch
		}
	}
	sp.LeaderEpoch = epoch
	sp.Timestamp = -1
	hw := p.HighWatermark()
	switch ts := rp.Timestamp; {
	case ts == -1 && readCommitted:
		sp.Offset = p.log.LastStableOffset(hw)
	case ts == -1:
		sp.Offset = hw
	case ts == -2:
		sp.Offset = p.LogStartOffset()
	case ts >= 0:
		off, found, err := offsetForTimestamp(p, ts, hw)
		if err != nil {
			return storageError(err)
		}
		sp.Offset = -1
		if found {
			sp.Offset, sp.Timestamp = off.offset, off.timestamp
		}
	default:
		return kerr.InvalidRequest
	}
	if version == 0 {
		sp.OldStyleOffsets = nil
		if sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
			sp.OldStyleOffsets = []int64{sp.Offset}
		}
	}
	return nil
}

type timedOffset struct{ offset, timestamp int64 }

// offsetForTimestamp finds the first offset at or after ts that consumers may read.
func offsetForTimestamp(p *partition, ts, hw int64) (timedOffset, bool, error) {
	off, t, found, err := p.log.OffsetForTimestamp(ts)
	if err != nil || !found || off >= hw {
		return timedOffset{}, false, err
	}
	return timedOffset{off, t}, true, nil
}
