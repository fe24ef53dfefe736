package broker

// OffsetFetch (key 9), versions 1-9.
//
// Behaviour: returns committed offsets (offset -1, leader epoch -1 and empty metadata where
// none is committed); null topics (v2+) means every partition the group has committed. v8+
// fetches several groups at once, each with its own error. Unknown groups have no offsets and
// no error, as in Kafka. With RequireStable (v7+, KIP-447) a partition with a transactional
// offset commit still waiting for its marker gets UNSTABLE_OFFSET_COMMIT, so a consumer taking
// it over retries instead of starting from the offset before the transaction. Groups of a
// partition being loaded get COORDINATOR_LOAD_IN_PROGRESS.

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

// fetchedOffset is one partition of an OffsetFetch answer.
type fetchedOffset struct {
	topic     string
	partition int32
	off       group.Offset
	ok        bool
	// unstable: a transactional commit of this partition awaits its marker.
	unstable bool
}

// fetchOffsets returns the group's offsets for the requested partitions (all when topics is
// nil).
func (c *coordinator) fetchOffsets(groupID string, topics map[string][]int32, all bool) ([]fetchedOffset, *kerr.Error) {
	if err := c.ensureReady(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.lookup(groupID, false)
	if err != nil {
		return nil, err
	}
	var out []fetchedOffset
	if all {
		if g == nil {
			return nil, nil
		}
		for tp, o := range g.Offsets {
			out = append(out, fetchedOffset{topic: tp.Topic, partition: tp.Partition, off: o, ok: true, unstable: c.hasPendingTxn(groupID, tp)})
		}
		slices.SortFunc(out, func(a, b fetchedOffset) int {
			if c := strings.Compare(a.topic, b.topic); c != 0 {
				return c
			}
			return int(a.partition - b.partition)
		})
		return out, nil
	}
	for t, ps := range topics {
		for _, p := range ps {
			f := fetchedOffset{topic: t, partition: p}
			tp := group.TopicPartition{Topic: t, Partition: p}
			if g != nil {
				f.off, f.ok = g.Offsets[tp]
			}
			f.unstable = c.hasPendingTxn(groupID, tp)
			out = append(out, f)
		}
	}
	return out, nil
}

func handleOffsetFetch(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	b := c.b
	type ask struct {
		topics map[string][]int32
		order  []string
		all    bool
	}
	build := func(ts []string, parts [][]int32, null bool) ask {
		a := ask{topics: map[string][]int32{}, all: null}
		for i, t := range ts {
			if _, ok := a.topics[t]; !ok {
				a.order = append(a.order, t)
			}
			a.topics[t] = append(a.topics[t], parts[i]...)
		}
		return a
	}
	// answer fetches one group and groups the result by topic in request order.
	answer := func(groupID string, a ask) (map[string][]fetchedOffset, []string, *kerr.Error) {
		if groupID == "" && req.version >= 8 {
			return nil, nil, kerr.InvalidGroupID
		}
		got, err := b.groups.fetchOffsets(groupID, a.topics, a.all)
		if err != nil {
			return nil, nil, err
		}
		byTopic := map[string][]fetchedOffset{}
		order := a.order
		for _, f := range got {
			if _, ok := byTopic[f.topic]; !ok && a.all {
				order = append(order, f.topic)
			}
			byTopic[f.topic] = append(byTopic[f.topic], f)
		}
		return byTopic, order, nil
	}
	empty := ""
	if req.version >= 8 {
		for _, rg := range r.Groups {
			var ts []string
			var ps [][]int32
			for _, t := range rg.Topics {
				ts = append(ts, t.Topic)
				ps = append(ps, t.Partitions)
			}
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			byTopic, order, err := answer(rg.Group, build(ts, ps, rg.Topics == nil))
			if err != nil {
				sg.ErrorCode = err.Code
			}
			for _, t := range order {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = t
				for _, f := range byTopic[t] {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = f.partition, -1, -1, &empty
					if f.unstable && r.RequireStable {
						sp.ErrorCode = kerr.UnstableOffsetCommit.Code
					} else if f.ok {
						md := f.off.Metadata
						sp.Offset, sp.LeaderEpoch, sp.Metadata = f.off.Offset, f.off.LeaderEpoch, &md
					}
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp, nil
	}
	var ts []string
	var ps [][]int32
	for _, t := range r.Topics {
		ts = append(ts, t.Topic)
		ps = append(ps, t.Partitions)
	}
	byTopic, order, err := answer(r.Group, build(ts, ps, r.Topics == nil && req.version >= 2))
	if err != nil {
		if req.version >= 2 {
			resp.ErrorCode = err.Code
			return resp, nil
		}
		order = ts
	}
	for _, t := range order {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t
		parts := byTopic[t]
		if err != nil {
			for _, p := range ps[slices.Index(ts, t)] {
				parts = append(parts, fetchedOffset{topic: t, partition: p})
			}
		}
		for _, f := range parts {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = f.partition, -1, -1, &empty
			if err != nil {
				sp.ErrorCode = err.Code
			} else if f.unstable && r.RequireStable && req.version >= 7 {
				sp.ErrorCode = kerr.UnstableOffsetCommit.Code
			} else if f.ok {
				md := f.off.Metadata
				sp.Offset, sp.LeaderEpoch, sp.Metadata = f.off.Offset, f.off.LeaderEpoch, &md
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
