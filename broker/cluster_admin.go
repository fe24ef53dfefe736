package broker

// Topic administration in cluster mode: CreateTopics, DeleteTopics, CreatePartitions and
// IncrementalAlterConfigs are decided by the active controller. A broker that is not the
// active controller forwards the request there unchanged (as KIP-590's forwarding does) and
// returns its answer once its own metadata image reflects the change.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

// adminWait bounds how long a forwarded change waits to appear in the local image.
const adminWait = 5 * time.Second

// errNotActiveController answers a request forwarded to this node's controller listener
// when this node is not (or no longer) the active controller; the sender tries again.
var errNotActiveController = errors.New("broker: this node is not the active controller")

// forward sends req to the active controller. It returns errLocalController when this node
// must handle it, and another error when no controller answered in time. A request that came
// from another broker over the controller listener (forwarded) is never forwarded again: it is
// handled here or refused with NOT_CONTROLLER.
func (cl *cluster) forward(forwarded bool, req kmsg.Request, codes func(kmsg.Response) []int16) (kmsg.Response, error) {
	if forwarded {
		if cl.ctl.ActiveController() {
			return nil, errLocalController
		}
		return nil, errNotActiveController
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
	defer cancel()
	return cl.toController(ctx, forwardingChannel, req, func(r kmsg.Response) bool {
		return slices.Contains(codes(r), kerr.NotController.Code)
	})
}

// unavailable is the error code for a request no controller answered.
func unavailable(err error) (int16, string) {
	return kerr.NotController.Code, err.Error()
}

func createTopicsCodes(r kmsg.Response) []int16 {
	var cs []int16
	for _, t := range r.(*kmsg.CreateTopicsResponse).Topics {
		cs = append(cs, t.ErrorCode)
	}
	return cs
}

// createTopics handles CreateTopics in cluster mode; forwarded is set for a request that came
// over the controller listener (likewise below).
func (cl *cluster) createTopics(forwarded bool, r *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp, err := cl.forward(forwarded, r, createTopicsCodes)
	if err == nil {
		out := resp.(*kmsg.CreateTopicsResponse)
		if !r.ValidateOnly {
			for _, t := range out.Topics {
				if t.ErrorCode == 0 {
					cl.waitForTopic(t.Topic, false, adminWait)
				}
			}
		}
		return out
	}
	out := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			st.ErrorMessage = &msg
		}
		switch {
		case !errors.Is(err, errLocalController):
			fail(unavailable(err))
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic named more than once in the request")
		case len(rt.ReplicaAssignment) > 0:
			fail(kerr.InvalidRequest.Code, "explicit replica assignments are not supported by the reference cluster; give a partition count and replication factor")
		default:
			if verr := validTopicName(rt.Topic); verr != nil {
				fail(kerr.InvalidTopicException.Code, verr.Error())
				break
			}
			t, cerr := cl.ctl.CreateTopic(rt.Topic, rt.NumPartitions, rt.ReplicationFactor, requestConfigs(rt), r.ValidateOnly)
			if cerr != nil {
				fail(controller.ErrorCode(cerr), cerr.Error())
				break
			}
			st.TopicID = t.ID
			st.NumPartitions = int32(len(t.Partitions))
			if len(t.Partitions) > 0 {
				st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
			}
			st.Configs = cl.b.createdConfigs(&topic{name: t.Name, id: t.ID, configs: t.Configs})
		}
		out.Topics = append(out.Topics, st)
	}
	return out
}

// createTopic creates one topic through the controller (auto-creation and the internal
// topic) and waits until the local image has it. It returns the Kafka error, if any.
func (cl *cluster) createTopic(name string, n int32, rf int16, configs map[string]string) *kerr.Error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	req.TimeoutMillis = int32(clusterRequestTimeout / time.Millisecond)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, n, rf
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(configs[k])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp := cl.createTopics(false, req)
	if len(resp.Topics) != 1 {
		return kerr.UnknownServerError
	}
	if code := resp.Topics[0].ErrorCode; code != 0 && code != kerr.TopicAlreadyExists.Code {
		return kafkaError(code)
	}
	if !cl.waitForTopic(name, false, adminWait) {
		return kerr.LeaderNotAvailable
	}
	return nil
}

// deleteTopics handles DeleteTopics in cluster mode.
func (cl *cluster) deleteTopics(forwarded bool, r *kmsg.DeleteTopicsRequest, version int16) *kmsg.DeleteTopicsResponse {
	resp, err := cl.forward(forwarded, r, func(r kmsg.Response) []int16 {
		var cs []int16
		for _, t := range r.(*kmsg.DeleteTopicsResponse).Topics {
			cs = append(cs, t.ErrorCode)
		}
		return cs
	})
	if err == nil {
		out := resp.(*kmsg.DeleteTopicsResponse)
		for _, t := range out.Topics {
			if t.ErrorCode == 0 && t.Topic != nil {
				cl.waitForTopic(*t.Topic, true, adminWait)
			}
		}
		return out
	}
	out := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
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
	return out
}

// createPartitions handles CreatePartitions in cluster mode.
func (cl *cluster) createPartitions(forwarded bool, r *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	resp, err := cl.forward(forwarded, r, func(r kmsg.Response) []int16 {
		var cs []int16
		for _, t := range r.(*kmsg.CreatePartitionsResponse).Topics {
			cs = append(cs, t.ErrorCode)
		}
		return cs
	})
	if err == nil {
		return resp.(*kmsg.CreatePartitionsResponse)
	}
	out := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var code int16
		var msg string
		switch {
		case !errors.Is(err, errLocalController):
			code, msg = unavailable(err)
		case seen[rt.Topic] > 1:
			code, msg = kerr.InvalidRequest.Code, "topic named more than once in the request"
		case rt.Assignment != nil:
			code, msg = kerr.InvalidReplicaAssignment.Code, "explicit replica assignments are not supported by the reference cluster"
		default:
			if _, cerr := cl.ctl.CreatePartitions(rt.Topic, rt.Count, r.ValidateOnly); cerr != nil {
				code, msg = controller.ErrorCode(cerr), cerr.Error()
			}
		}
		if code != 0 {
			st.ErrorCode, st.ErrorMessage = code, &msg
		}
		out.Topics = append(out.Topics, st)
	}
	return out
}

// alterConfigs handles IncrementalAlterConfigs in cluster mode (topic resources only).
func (cl *cluster) alterConfigs(forwarded bool, r *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	resp, err := cl.forward(forwarded, r, func(r kmsg.Response) []int16 {
		var cs []int16
		for _, rr := range r.(*kmsg.IncrementalAlterConfigsResponse).Resources {
			cs = append(cs, rr.ErrorCode)
		}
		return cs
	})
	if err == nil {
		return resp.(*kmsg.IncrementalAlterConfigsResponse)
	}
	out := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var code int16
		var msg string
		switch {
		case !errors.Is(err, errLocalController):
			code, msg = unavailable(err)
		case rr.ResourceType != kmsg.ConfigResourceTypeTopic:
			code, msg = kerr.InvalidRequest.Code, "only topic configs can be altered; broker settings are static (--set)"
		default:
			if e := cl.alterTopicConfigs(rr, r.ValidateOnly); e != nil {
				code, msg = controller.ErrorCode(e), e.Error()
			}
		}
		if code != 0 {
			sr.ErrorCode, sr.ErrorMessage = code, &msg
		}
		out.Resources = append(out.Resources, sr)
	}
	return out
}

// alterTopicConfigs turns one resource's operations into the controller's set and delete
// lists: the difference between the topic's overrides and what applyConfigOps makes of them.
func (cl *cluster) alterTopicConfigs(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	t := cl.ctl.Image().Topics[rr.ResourceName]
	if t == nil {
		return kerr.UnknownTopicOrPartition
	}
	next, e, msg := applyConfigOps(topicProps{broker: &cl.b.cfg, overrides: t.Configs}, rr.Configs)
	if e != nil {
		return fmt.Errorf("%w: %s", e, msg)
	}
	set := map[string]string{}
	for k, v := range next {
		if old, ok := t.Configs[k]; !ok || old != v {
			set[k] = v
		}
	}
	var del []string
	for k := range t.Configs {
		if _, ok := next[k]; !ok {
			del = append(del, k)
		}
	}
	_, err := cl.ctl.AlterConfigs(rr.ResourceName, set, del, validateOnly)
	return err
}

// kafkaError returns the *kerr.Error for code (UNKNOWN_SERVER_ERROR for codes kerr lacks).
func kafkaError(code int16) *kerr.Error {
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e
	}
	return kerr.UnknownServerError
}
