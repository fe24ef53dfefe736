package broker

// DeleteTopics (key 20), versions 1-6.
//
// Behaviour: decided by the active controller (forwarded there by other brokers, see
// admin.go): deletes each named topic (v1-5: TopicNames; v6: Topics by name or id) with its
// data. Unknown topics get UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id). The answer
// comes once this broker's image no longer has the topics, so its own partition directories
// are gone; other brokers delete theirs as they apply the image. NOT_CONTROLLER when no
// controller answered.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleDeleteTopics(c *conn, req *request) (kmsg.Response, error) {
	return c.b.cl.deleteTopics(c.controllerPlane, req.msg.(*kmsg.DeleteTopicsRequest), req.version), nil
}

// deleteTopics handles DeleteTopics.
func (cl *cluster) deleteTopics(forwarded bool, r *kmsg.DeleteTopicsRequest, version int16) *kmsg.DeleteTopicsResponse {
	out, err := forward(cl, forwarded, r, func(r *kmsg.DeleteTopicsResponse) []int16 {
		return errorCodes(r.Topics, func(t kmsg.DeleteTopicsResponseTopic) int16 { return t.ErrorCode })
	})
	if err == nil {
		for _, t := range out.Topics {
			if t.ErrorCode == 0 && t.Topic != nil {
				cl.waitForTopic(*t.Topic, true, adminWait)
			}
		}
		return out
	}
	out = r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if version >= 6 {
		for _, t := range r.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for i := range r.TopicNames {
			targets = append(targets, target{name: &r.TopicNames[i]})
		}
	}
	img := cl.ctl.Image()
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		if !errors.Is(err, errLocalController) {
			code, msg := unavailable(err)
			st.ErrorCode, st.ErrorMessage = code, &msg
			out.Topics = append(out.Topics, st)
			continue
		}
		var t *controller.Topic
		if tg.name != nil {
			t = img.Topics[*tg.name]
		} else {
			t = img.TopicByID(tg.id)
		}
		switch {
		case t == nil && tg.name == nil:
			st.ErrorCode = kerr.UnknownTopicID.Code
		case t == nil:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			name := t.Name
			st.Topic, st.TopicID = &name, t.ID
			if derr := cl.ctl.DeleteTopic(name); derr != nil {
				msg := derr.Error()
				st.ErrorCode, st.ErrorMessage = controller.ErrorCode(derr), &msg
			}
		}
		out.Topics = append(out.Topics, st)
	}
	cl.waitApplied()
	return out
}
