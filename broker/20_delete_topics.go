package broker

// DeleteTopics (key 20), versions 1-6.
//
// Behaviour: deletes each named topic (v1-5: TopicNames; v6: Topics by name or id) with its
// data. Unknown topics get UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id). Deletion is
// synchronous: the response is sent once the partition directories are gone.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteTopics(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DeleteTopicsRequest)
	if c.b.cl != nil {
		return c.b.cl.deleteTopics(c.controllerPlane, r, req.version), nil
	}
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.version >= 6 {
		for _, t := range r.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for i := range r.TopicNames {
			targets = append(targets, target{name: &r.TopicNames[i]})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic = tg.name
		st.TopicID = tg.id
		c.b.mu.RLock()
		var t *topic
		if tg.name != nil {
			t = c.b.topics[*tg.name]
		} else {
			t = c.b.topicsByID[tg.id]
		}
		c.b.mu.RUnlock()
		switch {
		case t == nil && tg.name == nil:
			st.ErrorCode = kerr.UnknownTopicID.Code
		case t == nil:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			name := t.name
			st.Topic, st.TopicID = &name, t.id
			if err := c.b.deleteTopic(t); err != nil {
				st.ErrorCode = kerr.KafkaStorageError.Code
				msg := err.Error()
				st.ErrorMessage = &msg
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
