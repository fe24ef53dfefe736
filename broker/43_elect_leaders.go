package broker

// ElectLeaders (key 43), versions 0-2.
//
// Behaviour: decided by the active controller (forwarded there by other brokers, see
// admin.go), as KRaft's controller does (KIP-460; the rules are controller.electionRecord's).
// ElectionType 0 (and every v0 request) is a preferred election: the first replica leads if it
// is live and in sync; ELECTION_NOT_NEEDED when it already leads,
// PREFERRED_LEADER_NOT_AVAILABLE when it cannot. ElectionType 1 is an unclean election of a
// partition without a leader: the first live in-sync replica, else the first live replica
// with ISR [it] (whatever unclean.leader.election.enable says); ELECTION_NOT_NEEDED when the
// partition has a leader, ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live. Other
// election types are INVALID_REQUEST. Null Topics means every partition, and then partitions
// that need no election are left out of the answer. Unknown partitions get
// UNKNOWN_TOPIC_OR_PARTITION; NOT_CONTROLLER when no controller answered. The answer comes
// once the change is committed and in this broker's image; the new leaders take over as
// they apply it. What differs from Kafka: nothing a client can observe.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleElectLeaders(c *conn, req *request) (kmsg.Response, error) {
	return c.b.cl.electLeaders(c.controllerPlane, req.msg.(*kmsg.ElectLeadersRequest)), nil
}

// electLeaders handles ElectLeaders.
func (cl *cluster) electLeaders(forwarded bool, r *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse {
	out, err := forward(cl, forwarded, r, func(r *kmsg.ElectLeadersResponse) []int16 {
		codes := []int16{r.ErrorCode}
		for _, t := range r.Topics {
			codes = append(codes, errorCodes(t.Partitions, func(p kmsg.ElectLeadersResponseTopicPartition) int16 { return p.ErrorCode })...)
		}
		return codes
	})
	if err == nil {
		return out
	}
	out = r.ResponseKind().(*kmsg.ElectLeadersResponse)
	var parts []controller.TopicPartition
	if r.Topics != nil {
		parts = []controller.TopicPartition{}
		for _, rt := range r.Topics {
			for _, p := range rt.Partitions {
				parts = append(parts, controller.TopicPartition{Topic: rt.Topic, Partition: p})
			}
		}
	}
	fail := func(code int16, msg string) *kmsg.ElectLeadersResponse {
		out.ErrorCode = code
		for _, tp := range parts {
			out.Topics = appendElectResult(out.Topics, tp.Topic, tp.Partition, code, msg)
		}
		return out
	}
	unclean := r.Version >= 1 && r.ElectionType == 1
	switch {
	case !errors.Is(err, errLocalController):
		return fail(unavailable(err))
	case r.Version >= 1 && r.ElectionType != 0 && r.ElectionType != 1:
		return fail(kerr.InvalidRequest.Code, "unknown election type")
	}
	res, err := cl.ctl.ElectLeaders(unclean, parts)
	if err != nil {
		return fail(controller.ErrorCode(err), err.Error())
	}
	for _, pr := range res {
		var msg string
		if pr.Err != nil {
			msg = pr.Err.Error()
		}
		out.Topics = appendElectResult(out.Topics, pr.Topic, pr.Partition, controller.ErrorCode(pr.Err), msg)
	}
	cl.waitApplied()
	return out
}

// appendElectResult adds one partition's result to topics, under its topic's entry.
func appendElectResult(topics []kmsg.ElectLeadersResponseTopic, topic string, partition int32, code int16, msg string) []kmsg.ElectLeadersResponseTopic {
	if len(topics) == 0 || topics[len(topics)-1].Topic != topic {
		t := kmsg.NewElectLeadersResponseTopic()
		t.Topic = topic
		topics = append(topics, t)
	}
	p := kmsg.NewElectLeadersResponseTopicPartition()
	p.Partition, p.ErrorCode = partition, code
	if code != 0 {
		p.ErrorMessage = &msg
	}
	last := &topics[len(topics)-1]
	last.Partitions = append(last.Partitions, p)
	return topics
}
