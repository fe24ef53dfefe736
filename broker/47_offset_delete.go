package broker

// OffsetDelete (key 47), version 0.
//
// Behaviour: deletes committed offsets of a group (tombstones in __consumer_offsets). A
// consumer group with members refuses partitions of topics its members subscribe to
// (GROUP_SUBSCRIBED_TO_TOPIC); a non-consumer group with members refuses all (NON_EMPTY_GROUP);
// an unknown group gets GROUP_ID_NOT_FOUND. Same as Kafka.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

func handleOffsetDelete(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.OffsetDeleteRequest)
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	b := c.b
	var perr [][]*kerr.Error
	for _, t := range r.Topics {
		perr = append(perr, make([]*kerr.Error, len(t.Partitions)))
	}
	var top *kerr.Error
	err := b.groups.do(r.Group, false, func(g *group.Group, now time.Time) {
		if g.State == group.Dead {
			top = kerr.GroupIDNotFound
			return
		}
		subscribed := map[string]bool{}
		if !g.IsEmpty() {
			if g.ProtocolType != "consumer" {
				top = kerr.NonEmptyGroup
				return
			}
			for _, m := range g.Members {
				var meta kmsg.ConsumerMemberMetadata
				if meta.ReadFrom(m.Metadata(g.Protocol)) == nil {
					for _, t := range meta.Topics {
						subscribed[t] = true
					}
				}
			}
		}
		var recs []record
		var del []group.TopicPartition
		for i, t := range r.Topics {
			for j, p := range t.Partitions {
				if subscribed[t.Topic] {
					perr[i][j] = kerr.GroupSubscribedToTopic
					continue
				}
				if _, kerrv := b.partitionFor(t.Topic, p.Partition); kerrv != nil {
					perr[i][j] = kerr.UnknownTopicOrPartition
					continue
				}
				tp := group.TopicPartition{Topic: t.Topic, Partition: p.Partition}
				if _, ok := g.Offsets[tp]; ok {
					recs = append(recs, record{key: offsetKey(g.ID, tp.Topic, tp.Partition)})
					del = append(del, tp)
				}
			}
		}
		if err := b.groups.appendRecords(g.ID, recs); err != nil {
			b.log.Warn("offset delete", "group", g.ID, "err", err)
			top = kerr.CoordinatorNotAvailable
			return
		}
		for _, tp := range del {
			delete(g.Offsets, tp)
		}
	})
	if err == kerr.UnknownMemberID {
		err = kerr.GroupIDNotFound
	}
	if err == nil {
		err = top
	}
	if err != nil {
		resp.ErrorCode = err.Code
		return resp, nil
	}
	for i, t := range r.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = t.Topic
		for j, p := range t.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = p.Partition
			if perr[i][j] != nil {
				sp.ErrorCode = perr[i][j].Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
