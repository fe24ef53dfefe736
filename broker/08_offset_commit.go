package broker

// OffsetCommit (key 8), versions 2-9.
//
// Behaviour: validates the committer as Kafka's classic coordinator does (group.CheckCommit):
// a generation below 0 commits for a group without members (offsets-only groups, created on
// first commit); otherwise the member id and generation must be current, with
// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID or REBALANCE_IN_PROGRESS (while
// CompletingRebalance) for every partition when they are not. Commits are accepted while
// PreparingRebalance so members can commit before giving up partitions. Unknown partitions
// get UNKNOWN_TOPIC_OR_PARTITION and metadata over offset.metadata.max.bytes (4096) gets
// OFFSET_METADATA_TOO_LARGE. Accepted offsets are appended to __consumer_offsets as one batch
// and applied only once the append returned, so an answered commit survives a restart; a
// rejected commit is never written. Differences from Kafka: the retention time (v2-4) is
// ignored; offsets never expire.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

// offsetMetadataMaxBytes is offset.metadata.max.bytes' Kafka default.
const offsetMetadataMaxBytes = 4096

// commitErrors holds an offset commit's error for each requested partition, indexed by topic
// and partition as in the request (nil: accepted so far).
type commitErrors [][]*kerr.Error

// newCommitErrors returns commitErrors for topics topics of partitions(i) partitions each.
func newCommitErrors(topics int, partitions func(i int) int) commitErrors {
	e := make(commitErrors, topics)
	for i := range e {
		e[i] = make([]*kerr.Error, partitions(i))
	}
	return e
}

// fill gives err to every partition that has no error yet.
func (e commitErrors) fill(err *kerr.Error) {
	for i := range e {
		for j := range e[i] {
			if e[i][j] == nil {
				e[i][j] = err
			}
		}
	}
}

// code returns the error code of partition j of topic i (0: none).
func (e commitErrors) code(i, j int) int16 {
	if e[i][j] == nil {
		return 0
	}
	return e[i][j].Code
}

// commitOffset checks one partition of an offset commit as Kafka's coordinator does, and
// returns the offset to store: the partition must exist in the cluster
// (UNKNOWN_TOPIC_OR_PARTITION) and the metadata fit offset.metadata.max.bytes
// (OFFSET_METADATA_TOO_LARGE).
func (b *Broker) commitOffset(tp group.TopicPartition, offset int64, epoch int32, metadata *string, now time.Time) (group.Offset, *kerr.Error) {
	if !b.partitionExists(tp.Topic, tp.Partition) {
		return group.Offset{}, kerr.UnknownTopicOrPartition
	}
	o := group.Offset{Offset: offset, LeaderEpoch: epoch, CommitTime: now.UnixMilli()}
	if metadata != nil {
		o.Metadata = *metadata
	}
	if len(o.Metadata) > offsetMetadataMaxBytes {
		return group.Offset{}, kerr.OffsetMetadataTooLarge
	}
	return o, nil
}

func handleOffsetCommit(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	b := c.b
	errs := newCommitErrors(len(r.Topics), func(i int) int { return len(r.Topics[i].Partitions) })
	instance := ""
	if r.InstanceID != nil {
		instance = *r.InstanceID
	}
	var committed int
	if r.Group == "" {
		errs.fill(kerr.InvalidGroupID)
	} else if err := b.groups.do(r.Group, true, func(g *group.Group, now time.Time) {
		if err := g.CheckCommit(r.MemberID, instance, r.Generation); err != nil {
			errs.fill(err)
			return
		}
		var recs []record
		var tps []group.TopicPartition
		var offs []group.Offset
		for i, t := range r.Topics {
			for j, p := range t.Partitions {
				tp := group.TopicPartition{Topic: t.Topic, Partition: p.Partition}
				o, kerrv := b.commitOffset(tp, p.Offset, p.LeaderEpoch, p.Metadata, now)
				if kerrv != nil {
					errs[i][j] = kerrv
					continue
				}
				recs = append(recs, offsetRecord(g.ID, tp, o))
				tps = append(tps, tp)
				offs = append(offs, o)
			}
		}
		if err := b.groups.appendRecords(g.ID, recs); err != nil {
			b.log.Warn("append offset commit", "group", g.ID, "err", err)
			errs.fill(kerr.CoordinatorNotAvailable)
			return
		}
		for k, tp := range tps {
			g.Offsets[tp] = offs[k]
		}
		committed = len(tps)
	}); err != nil {
		errs.fill(err)
	}
	b.metrics.offsetCommits.Add(float64(committed))
	for i, t := range r.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = t.Topic
		for j, p := range t.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = p.Partition
			sp.ErrorCode = errs.code(i, j)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
