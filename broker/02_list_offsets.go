package broker

// ListOffsets (key 2), versions 0-11.
//
// Versions: v0 answers OldStyleOffsets (at most MaxNumOffsets, here one); v1 one offset and
// its timestamp; v2 adds IsolationLevel; v3 the throttle time; v4 CurrentLeaderEpoch in and
// LeaderEpoch out; v5 may answer OFFSET_NOT_AVAILABLE (KIP-207); v6 is flexible; v7 adds
// timestamp -3, the record with the largest timestamp (KIP-734); v8 -4, the earliest local
// offset (KIP-405); v9 -5, the latest offset in tiered storage (KIP-1005); v10 TimeoutMillis
// (KIP-1075, it only bounds remote-storage lookups); v11 -6, the earliest offset not yet
// uploaded to tiered storage (KIP-1023).
//
// Behaviour, as Kafka's ReplicaManager and log answer it: -1 (latest) is the high watermark
// (read_uncommitted) or last stable offset (read_committed) with the current leader epoch;
// -2 (earliest) and -4 are the log start offset with the epoch of the leader-epoch cache's
// first entry; a timestamp >= 0 is the first record at or after it, found inside its batch
// (storage.Log.OffsetForTimestamp), with the record's timestamp and its batch's leader
// epoch; -3 is the first record carrying the largest timestamp. A record at or above the high
// watermark (last stable offset) is not returned: offset and timestamp are -1. This broker
// has no tiered storage, so -5 and -6 answer offset -1 with leader epoch -1 as Kafka does then.
// A negative timestamp older than the request version (or unknown) is UNSUPPORTED_VERSION, a
// partition named twice INVALID_REQUEST. CurrentLeaderEpoch is checked as in Fetch. While a
// new leader's high watermark is still below the offset where its epoch began, -1 and lookups
// that find nothing below it answer OFFSET_NOT_AVAILABLE (v5+) or LEADER_NOT_AVAILABLE.
// ReplicaID -2 (debug) may be answered by a follower; replica ids >= 0 read up to the log end.
// Differences from Kafka: v0 answers at most one offset (Kafka lists segment base offsets).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/storage"
)

// ListOffsets timestamp sentinels (Kafka's ListOffsetsRequest constants) and the first
// request version that may carry each (Kafka's ReplicaManager.timestampMinSupportedVersion).
const (
	latestTimestamp                = -1
	earliestTimestamp              = -2
	maxTimestamp                   = -3
	earliestLocalTimestamp         = -4
	latestTieredTimestamp          = -5
	earliestPendingUploadTimestamp = -6
)

var timestampMinVersion = map[int64]int16{
	latestTimestamp: 0, earliestTimestamp: 0, maxTimestamp: 7, earliestLocalTimestamp: 8,
	latestTieredTimestamp: 9, earliestPendingUploadTimestamp: 11,
}

// Replica ids of ListOffsets requests that are not brokers.
const (
	consumerReplicaID  = -1
	debuggingReplicaID = -2
)

func handleListOffsets(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	type tp struct {
		topic string
		part  int32
	}
	seen := map[tp]int{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			seen[tp{rt.Topic, rp.Partition}]++
		}
	}
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			var err *kerr.Error
			switch minV, known := timestampMinVersion[rp.Timestamp]; {
			case seen[tp{rt.Topic, rp.Partition}] > 1:
				err = kerr.InvalidRequest
			case rp.Timestamp < 0 && (!known || req.version < minV):
				err = kerr.UnsupportedVersion
			default:
				err = c.listOffset(r, rt.Topic, rp, &sp, req.version)
			}
			if err != nil {
				sp.ErrorCode = err.Code
				sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
			}
			if req.version == 0 {
				sp.OldStyleOffsets = nil
				if sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
					sp.OldStyleOffsets = []int64{sp.Offset}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// listOffset answers one partition of a ListOffsets request into sp.
func (c *conn) listOffset(r *kmsg.ListOffsetsRequest, topic string, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition, version int16) *kerr.Error {
	p, err := c.b.partitionFor(topic, rp.Partition)
	if err == nil && r.ReplicaID != debuggingReplicaID {
		p, err = c.b.leaderOf(p, nil)
	}
	if err != nil {
		return err
	}
	epoch := p.LeaderEpoch()
	if rp.CurrentLeaderEpoch >= 0 {
		if rp.CurrentLeaderEpoch < epoch {
			return kerr.FencedLeaderEpoch
		}
		if rp.CurrentLeaderEpoch > epoch {
			return kerr.UnknownLeaderEpoch
		}
	}
	hw := p.HighWatermark()
	client := r.ReplicaID == consumerReplicaID
	lastFetchable := p.LogEndOffset()
	if client {
		lastFetchable = hw
		if r.IsolationLevel == 1 {
			lastFetchable = p.log.LastStableOffset(hw)
		}
	}
	// A new leader whose high watermark has not reached its epoch's start offset does not
	// know yet what is committed (Kafka's Partition.fetchOffsetForTimestamp).
	var offsetsErr *kerr.Error
	if client && p.leaderEpochStartOffset() > hw {
		offsetsErr = kerr.OffsetNotAvailable
		if version < 5 {
			offsetsErr = kerr.LeaderNotAvailable
		}
	}
	sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
	var found storage.TimestampOffset
	var ok bool
	var serr error
	switch rp.Timestamp {
	case latestTimestamp:
		if offsetsErr != nil {
			return offsetsErr
		}
		sp.Offset, sp.LeaderEpoch = lastFetchable, epoch
		return nil
	case earliestTimestamp, earliestLocalTimestamp:
		sp.Offset, sp.LeaderEpoch = p.log.EarliestOffset()
		return nil
	case latestTieredTimestamp, earliestPendingUploadTimestamp:
		return nil // no tiered storage: Kafka answers offset -1, epoch -1
	case maxTimestamp:
		found, ok, serr = p.log.MaxTimestamp()
	default:
		found, ok, serr = p.log.OffsetForTimestamp(rp.Timestamp)
	}
	if serr != nil {
		return storageError(serr)
	}
	if !ok || found.Offset >= lastFetchable {
		return offsetsErr
	}
	sp.Offset, sp.Timestamp, sp.LeaderEpoch = found.Offset, found.Timestamp, found.LeaderEpoch
	return nil
}

// leaderEpochStartOffset is the log end offset when this broker became leader in its current
// epoch (0 on a single node).
func (p *partition) leaderEpochStartOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.rs.EpochStart()
}
