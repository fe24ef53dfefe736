package broker

// TxnOffsetCommit (key 28), versions 0-3.
//
// Behaviour: as Kafka's group coordinator: for v3+ with a generation of 0 or more the member
// id and generation are checked as OffsetCommit does (group.CheckCommit); unknown partitions
// get UNKNOWN_TOPIC_OR_PARTITION, metadata over offset.metadata.max.bytes
// OFFSET_METADATA_TOO_LARGE. Accepted offsets are appended to the group's __consumer_offsets
// partition as one transactional batch of the producer (no sequence, as Kafka's coordinator
// writes it) and kept pending until the transaction's marker reaches that partition (see
// txn_offsets.go): OffsetFetch shows them only after a commit marker. Before v3 a
// PRODUCER_FENCED from the log is answered INVALID_PRODUCER_EPOCH (KIP-588).
// Differences from Kafka: the producer's membership in its transaction is not verified
// (KIP-890).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

func handleTxnOffsetCommit(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.TxnOffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	b := c.b
	errs := newCommitErrors(len(r.Topics), func(i int) int { return len(r.Topics[i].Partitions) })
	instance := ""
	if r.InstanceID != nil {
		instance = *r.InstanceID
	}
	if r.Group == "" {
		errs.fill(kerr.InvalidGroupID)
	} else if r.ProducerID < 0 || r.TransactionalID == "" {
		errs.fill(kerr.InvalidRequest)
	} else if err := b.groups.do(r.Group, true, func(g *group.Group, now time.Time) {
		if req.version >= 3 && r.Generation >= 0 {
			if err := g.CheckCommit(r.MemberID, instance, r.Generation); err != nil {
				errs.fill(err)
				return
			}
		}
		var recs []record
		offs := map[group.TopicPartition]group.Offset{}
		for i, t := range r.Topics {
			for j, p := range t.Partitions {
				tp := group.TopicPartition{Topic: t.Topic, Partition: p.Partition}
				o, kerrv := b.commitOffset(tp, p.Offset, p.LeaderEpoch, p.Metadata, now)
				if kerrv != nil {
					errs[i][j] = kerrv
					continue
				}
				recs = append(recs, offsetRecord(g.ID, tp, o))
				offs[tp] = o
			}
		}
		if len(recs) == 0 {
			return
		}
		if b.cfg.bug(bugTxnOffsetsEarly) {
			if err := b.groups.appendRecords(g.ID, recs); err != nil {
				errs.fill(kerr.CoordinatorNotAvailable)
				return
			}
			for tp, o := range offs {
				g.Offsets[tp] = o
			}
			return
		}
		raw := encodeProducerBatch(recs, now.UnixMilli(), r.ProducerID, r.ProducerEpoch)
		if kerrv := b.appendInternal(offsetsTopic, partitionFor(g.ID, b.groups.numPartitions()), raw); kerrv != nil {
			b.log.Warn("append transactional offset commit", "group", g.ID, "err", kerrv)
			switch kerrv {
			case kerr.ProducerFenced, kerr.InvalidProducerEpoch:
				if req.version < 3 {
					kerrv = kerr.InvalidProducerEpoch
				}
			case kerr.NotLeaderForPartition:
				kerrv = kerr.NotCoordinator
			default:
				kerrv = kerr.CoordinatorNotAvailable
			}
			errs.fill(kerrv)
			return
		}
		b.groups.addPendingTxn(r.ProducerID, g.ID, offs)
	}); err != nil {
		errs.fill(err)
	}
	for i, t := range r.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = t.Topic
		for j, p := range t.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = p.Partition
			sp.ErrorCode = errs.code(i, j)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
