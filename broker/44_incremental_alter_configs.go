package broker

// IncrementalAlterConfigs (key 44), versions 0-1.
//
// Behaviour: first, as Kafka's ConfigAdminManager.preprocess on the broker that received the
// request, INVALID_REQUEST for a resource named twice (both), a config named twice in one
// resource, a null value for anything but DELETE, a resource type other than topic (2) and
// broker (4), and a broker resource naming another broker (per-broker configs are altered
// through that broker, as kadm's AlterBrokerConfigs does). The rest is decided by the
// active controller (forwarded there by other brokers, see admin.go).
//
// Topic resources: SET, DELETE (back to the default), APPEND and SUBTRACT (list configs:
// cleanup.policy) on the topic's overrides, names and values validated first
// (INVALID_CONFIG; nothing of a failed resource is applied); UNKNOWN_TOPIC_OR_PARTITION for
// unknown topics.
//
// Broker resources (dynamic broker configs, KIP-226): "" is the cluster-wide default, a
// broker id that broker's own; the same operations on the resource's dynamic configs. Only
// the broker-level defaults of topic configs may change (log.segment.bytes, log.roll.ms,
// log.index.*, log.flush.interval.messages, log.flush.interval.ms, log.retention.ms,
// log.retention.bytes, log.cleanup.policy, log.cleaner.delete.retention.ms,
// log.message.timestamp.type, message.max.bytes, min.insync.replicas,
// unclean.leader.election.enable, compression.type); other keys are refused with
// INVALID_REQUEST "cannot update these configs dynamically", bad values and unknown keys with
// INVALID_REQUEST, as Kafka answers broker config validation failures. They take effect on
// every broker as it applies the image: topics without their own setting follow them
// (retention, flushing, segments, min.insync.replicas, message size), and the controller
// uses unclean.leader.election.enable, electing leaders for offline partitions at once when
// it is enabled. DescribeConfigs shows them with their sources.
//
// New values are in the controller quorum's log, so they survive restarts; this broker
// applies them before it answers, the others as they apply the image. ValidateOnly changes
// nothing. What differs from Kafka: unknown broker config names are refused (Kafka stores
// them); replica.lag.time.max.ms and other settings that Kafka also treats as read-only stay
// read-only (set them with --set at start-up).

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleIncrementalAlterConfigs(c *conn, req *request) (kmsg.Response, error) {
	return c.b.cl.alterConfigs(c.controllerPlane, req.msg.(*kmsg.IncrementalAlterConfigsRequest)), nil
}

// alterConfigs handles IncrementalAlterConfigs: it preprocesses the request (unless it was
// forwarded, then the sender did), forwards or decides the rest, and answers every resource
// in request order.
func (cl *cluster) alterConfigs(forwarded bool, r *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	out := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	refused := map[int]string{}
	if !forwarded {
		refused = cl.preprocessConfigs(r.Resources)
	}
	rest := *r
	rest.Resources = nil
	for i, rr := range r.Resources {
		if _, ok := refused[i]; !ok {
			rest.Resources = append(rest.Resources, rr)
		}
	}
	var decided []kmsg.IncrementalAlterConfigsResponseResource
	if len(rest.Resources) > 0 {
		decided = cl.decideConfigs(forwarded, &rest)
	}
	for i, rr := range r.Resources {
		if msg, ok := refused[i]; ok {
			sr := kmsg.NewIncrementalAlterConfigsResponseResource()
			sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
			sr.ErrorCode, sr.ErrorMessage = kerr.InvalidRequest.Code, &msg
			out.Resources = append(out.Resources, sr)
			continue
		}
		if len(decided) == 0 {
			sr := kmsg.NewIncrementalAlterConfigsResponseResource()
			sr.ResourceType, sr.ResourceName, sr.ErrorCode = rr.ResourceType, rr.ResourceName, kerr.UnknownServerError.Code
			out.Resources = append(out.Resources, sr)
			continue
		}
		out.Resources = append(out.Resources, decided[0])
		decided = decided[1:]
	}
	return out
}

// preprocessConfigs returns the INVALID_REQUEST message of each resource (by index) that the
// receiving broker refuses before anything is forwarded, as Kafka's
// ConfigAdminManager.preprocess.
func (cl *cluster) preprocessConfigs(resources []kmsg.IncrementalAlterConfigsRequestResource) map[int]string {
	refused := map[int]string{}
	type key struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	first := map[key]int{}
	for i, rr := range resources {
		k := key{rr.ResourceType, rr.ResourceName}
		if j, dup := first[k]; dup {
			refused[i], refused[j] = "Each resource must appear at most once.", "Each resource must appear at most once."
			continue
		}
		first[k] = i
	}
	self := strconv.Itoa(int(cl.b.cfg.NodeID))
	for i, rr := range resources {
		if _, ok := refused[i]; ok {
			continue
		}
		var names, nulls []string
		for _, c := range rr.Configs {
			if slices.Contains(names, c.Name) {
				refused[i] = "Error due to duplicate config keys"
			}
			names = append(names, c.Name)
			if c.Value == nil && c.Op != kmsg.IncrementalAlterConfigOpDelete {
				nulls = append(nulls, c.Name)
			}
		}
		switch {
		case refused[i] != "":
		case len(nulls) > 0:
			refused[i] = "Null value not supported for : " + strings.Join(nulls, ", ")
		case rr.ResourceType != kmsg.ConfigResourceTypeTopic && rr.ResourceType != kmsg.ConfigResourceTypeBroker:
			refused[i] = fmt.Sprintf("Unknown resource type %d", rr.ResourceType)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker && rr.ResourceName != "" && rr.ResourceName != self:
			if _, err := strconv.ParseInt(rr.ResourceName, 10, 32); err != nil {
				refused[i] = "Node id must be an integer, but it is: " + rr.ResourceName
			} else {
				refused[i] = fmt.Sprintf("Unexpected broker id, expected %s, but received %s", self, rr.ResourceName)
			}
		}
		if refused[i] == "" {
			delete(refused, i)
		}
	}
	return refused
}

// decideConfigs forwards r to the active controller or, on it, applies each resource, and
// returns one answer per resource in order.
func (cl *cluster) decideConfigs(forwarded bool, r *kmsg.IncrementalAlterConfigsRequest) []kmsg.IncrementalAlterConfigsResponseResource {
	out, err := forward(cl, forwarded, r, func(r *kmsg.IncrementalAlterConfigsResponse) []int16 {
		return errorCodes(r.Resources, func(rr kmsg.IncrementalAlterConfigsResponseResource) int16 { return rr.ErrorCode })
	})
	if err == nil {
		return out.Resources
	}
	var answers []kmsg.IncrementalAlterConfigsResponseResource
	for _, rr := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var code int16
		var msg string
		switch {
		case !errors.Is(err, errLocalController):
			code, msg = unavailable(err)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			if e := cl.alterBrokerConfigs(rr, r.ValidateOnly); e != nil {
				code, msg = controller.ErrorCode(e), e.Error()
			}
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			if e := cl.alterTopicConfigs(rr, r.ValidateOnly); e != nil {
				code, msg = controller.ErrorCode(e), e.Error()
			}
		default:
			code, msg = kerr.InvalidRequest.Code, fmt.Sprintf("Unknown resource type %d", rr.ResourceType)
		}
		if code != 0 {
			sr.ErrorCode, sr.ErrorMessage = code, &msg
		}
		answers = append(answers, sr)
	}
	if !r.ValidateOnly {
		cl.waitApplied()
	}
	return answers
}

// alterTopicConfigs turns one resource's operations into the controller's set and delete
// lists: the difference between the topic's overrides and what applyConfigOps makes of them.
func (cl *cluster) alterTopicConfigs(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	t := cl.ctl.Image().Topics[rr.ResourceName]
	if t == nil {
		return kerr.UnknownTopicOrPartition
	}
	space := configSpace{
		kind: "topic",
		typ: func(name string) (int8, bool) {
			tc, ok := topicConfigs[name]
			return tc.typ, ok
		},
		base: func(next map[string]string, name string) string {
			return topicProps{broker: &cl.b.cfg, overrides: next}.get(name)
		},
	}
	next, e, msg := space.apply(t.Configs, rr.Configs)
	if e != nil {
		return fmt.Errorf("%w: %s", e, msg)
	}
	set, del := configDiff(t.Configs, next)
	_, err := cl.ctl.AlterConfigs(rr.ResourceName, set, del, validateOnly)
	return err
}

// alterBrokerConfigs does the same for a broker resource's dynamic configs. APPEND and
// SUBTRACT start from the resource's own value, else Kafka's default, as Kafka does.
func (cl *cluster) alterBrokerConfigs(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	cur := cl.ctl.Image().BrokerConfigs[rr.ResourceName]
	space := configSpace{
		kind: "broker",
		typ: func(name string) (int8, bool) {
			// Every name passes here; validateBrokerConfigs refuses unknown and read-only ones.
			tc, _ := topicConfigFor(name)
			return tc.typ, true
		},
		base: func(next map[string]string, name string) string {
			if v, ok := next[name]; ok {
				return v
			}
			return brokerProps[name]
		},
	}
	next, e, msg := space.apply(cur, rr.Configs)
	if e != nil {
		return fmt.Errorf("%w: %s", e, msg)
	}
	set, del := configDiff(cur, next)
	_, err := cl.ctl.AlterBrokerConfigs(rr.ResourceName, set, del, validateOnly)
	return err
}

// configDiff returns what turns cur into next: the keys to set and the keys to delete.
func configDiff(cur, next map[string]string) (set map[string]string, del []string) {
	set = map[string]string{}
	for k, v := range next {
		if old, ok := cur[k]; !ok || old != v {
			set[k] = v
		}
	}
	for k := range cur {
		if _, ok := next[k]; !ok {
			del = append(del, k)
		}
	}
	return set, del
}

// configSpace is what IncrementalAlterConfigs operations need to know of a resource type:
// each config's Kafka type (7 is a list; false for unknown names) and the value APPEND and
// SUBTRACT start from, given the configs as changed so far.
type configSpace struct {
	kind string
	typ  func(name string) (int8, bool)
	base func(next map[string]string, name string) string
}

// apply applies IncrementalAlterConfigs operations to a resource's configs and returns the
// new configs (cur is not modified).
func (s configSpace) apply(cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, *kerr.Error, string) {
	next := maps.Clone(cur)
	if next == nil {
		next = map[string]string{}
	}
	for _, op := range ops {
		typ, ok := s.typ(op.Name)
		if !ok {
			return nil, kerr.InvalidConfig, "unknown " + s.kind + " config " + op.Name
		}
		val := ""
		if op.Value != nil {
			val = *op.Value
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			next[op.Name] = val
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if typ != 7 {
				return nil, kerr.InvalidConfig, "APPEND and SUBTRACT apply only to list configs; " + op.Name + " is not one"
			}
			items := strings.Split(s.base(next, op.Name), ",")
			if op.Op == kmsg.IncrementalAlterConfigOpAppend {
				for _, it := range strings.Split(val, ",") {
					if !slices.Contains(items, it) {
						items = append(items, it)
					}
				}
			} else {
				items = slices.DeleteFunc(items, func(s string) bool { return slices.Contains(strings.Split(val, ","), s) })
			}
			next[op.Name] = strings.Join(items, ",")
		default:
			return nil, kerr.InvalidRequest, "unknown config operation"
		}
	}
	return next, nil, ""
}
