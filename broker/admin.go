package broker

// Administration through the controller: CreateTopics, DeleteTopics, CreatePartitions,
// IncrementalAlterConfigs, ElectLeaders, AlterPartitionReassignments and
// ListPartitionReassignments (one handler file each) are decided by the active controller. A
// broker that is not the active controller forwards the request there unchanged (as
// KIP-590's forwarding does, on its forwarding channel to the controller listener) and
// returns the answer once its own metadata image reflects the change; the active controller
// decides itself and answers once it has applied the change to its own partitions. On a lone
// broker, its own controller is always the active one. A new admin API follows the same
// shape: forward, else decide with a Controller method and waitApplied.

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminWait bounds how long a forwarded change waits to appear in the local image.
const adminWait = 5 * time.Second

// errNotActiveController answers a request forwarded to this node's controller listener
// when this node is not (or no longer) the active controller; the sender tries again.
var errNotActiveController = errors.New("broker: this node is not the active controller")

// forward sends req to the active controller and returns its answer. It returns
// errLocalController when this node must decide itself, and another error when no controller
// answered in time. codes lists the error codes of the answer's items, so that an answer of
// NOT_CONTROLLER (the node asked lost its leadership) is retried. A request that came from
// another broker over the controller listener (forwarded) is never forwarded again: it is
// decided here or refused with NOT_CONTROLLER.
func forward[R kmsg.Response](cl *cluster, forwarded bool, req kmsg.Request, codes func(R) []int16) (R, error) {
	var none R
	if forwarded {
		if cl.ctl.ActiveController() {
			return none, errLocalController
		}
		return none, errNotActiveController
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
	defer cancel()
	resp, err := cl.toController(ctx, forwardingChannel, req, func(r kmsg.Response) bool {
		return slices.Contains(codes(r.(R)), kerr.NotController.Code)
	})
	if err != nil {
		return none, err
	}
	return resp.(R), nil
}

// errorCodes returns the error code of every item, for forward.
func errorCodes[T any](items []T, code func(T) int16) []int16 {
	out := make([]int16, len(items))
	for i, it := range items {
		out[i] = code(it)
	}
	return out
}

// unavailable is the error code for a request no controller answered.
func unavailable(err error) (int16, string) {
	return kerr.NotController.Code, err.Error()
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

// waitApplied waits (up to adminWait) until this broker has applied the image its controller
// node holds now, so a change this node decided is in its own partitions before it answers.
func (cl *cluster) waitApplied() {
	want := cl.ctl.Image().Index
	deadline := time.Now().Add(adminWait)
	for time.Now().Before(deadline) {
		if img := cl.img.Load(); img != nil && img.Index >= want {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// waitForTopic waits until the applied image has topic name (or, with gone, lacks it).
func (cl *cluster) waitForTopic(name string, gone bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if img := cl.img.Load(); img != nil && (img.Topics[name] == nil) == gone {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// createInternalTopic creates an internal topic (partitions n, configs) unless it exists,
// with the replication factor setting rfProp capped at the number of live brokers, as Kafka
// does for __consumer_offsets and __transaction_state.
func (cl *cluster) createInternalTopic(name string, n int32, rfProp string, configs map[string]string) *kerr.Error {
	rf := min(int(cl.b.cfg.propInt(rfProp)), len(cl.ctl.Image().LiveBrokers()))
	return cl.createTopic(name, n, int16(max(rf, 1)), configs)
}

// kafkaError returns the *kerr.Error for code (UNKNOWN_SERVER_ERROR for codes kerr lacks).
func kafkaError(code int16) *kerr.Error {
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e
	}
	return kerr.UnknownServerError
}
