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

func handleOffsetCommit(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	b := c.b
	errs := make([][]*kerr.Error, len(r.Topics))
	for i, t := range r.Topics {
		errs[i] = make([]*kerr.Error, len(t.Partitions))
	}
	setAll := func(err *kerr.Error) {
		for i := range errs {
			for j := range errs[i] {
				errs[i][j] = err
			}
		}
	}
	instance := ""
	if r.InstanceID != nil {
		instance = *r.InstanceID
	}
	var committed int
	if r.Group == "" {
		setAll(kerr.InvalidGroupID)
	} else if err := b.groups.do(r.Group, true, func(g *group.Group, now time.Time) {
		if err := g.CheckCommit(r.MemberID, instance, r.Generation); err != nil {
			setAll(err)
			return
		}
		var recs []record
		var tps []group.TopicPartition
		var offs []group.Offset
		for i, t := range r.Topics {
			for j, p := range t.Partitions {
				if _, kerrv := b.partitionFor(t.Topic, p.Partition); kerrv != nil {
					errs[i][j] = kerr.UnknownTopicOrPartition
					continue
				}
				o := group.Offset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, CommitTime: now.UnixMilli()}
				if p.Metadata != nil {
					o.Metadata = *p.Metadata
				}
				if len(o.Metadata) > offsetMetadataMaxBytes {
					errs[i][j] = kerr.OffsetMetadataTooLarge
					continue
				}
				tp := group.TopicPartition{Topic: t.Topic, Partition: p.Partition}
				recs = append(recs, offsetRecord(g.ID, tp, o))
				tps = append(tps, tp)
				offs = append(offs, o)
			}
		}
		if err := b.groups.appendRecords(g.ID, recs); err != nil {
			b.log.Warn("append offset commit", "group", g.ID, "err", err)
			for i := range errs {
				for j := range errs[i] {
					if errs[i][j] == nil {
						errs[i][j] = kerr.CoordinatorNotAvailable
					}
				}
			}
			return
		}
		for k, tp := range tps {
			g.Offsets[tp] = offs[k]
		}
		committed = len(tps)
	}); err != nil {
		setAll(err)
	}
	b.metrics.offsetCommits.Add(float64(committed))
	for i, t := range r.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = t.Topic
		for j, p := range t.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = p.Partition
			if errs[i][j] != nil {
				sp.ErrorCode = errs[i][j].Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
