package broker

// IncrementalAlterConfigs (key 44), versions 0-1.
//
// Behaviour: decided by the active controller (forwarded there by other brokers, see
// admin.go): for topic resources applies SET, DELETE (back to the default), APPEND and
// SUBTRACT (list configs: cleanup.policy) to the topic's overrides, validating names and
// values first (INVALID_CONFIG; nothing of a failed resource is applied). ValidateOnly changes
// nothing. New values are in the controller quorum's log, so they survive restarts; this
// broker's logs have them when it answers, the other brokers' as they apply the image. Unknown
// topics get UNKNOWN_TOPIC_OR_PARTITION. Differences from Kafka: dynamic broker configs (type
// 4) are refused with INVALID_REQUEST; set broker settings with --set at start-up.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleIncrementalAlterConfigs(c *conn, req *request) (kmsg.Response, error) {
	return c.b.cl.alterConfigs(c.controllerPlane, req.msg.(*kmsg.IncrementalAlterConfigsRequest)), nil
}

// alterConfigs handles IncrementalAlterConfigs (topic resources only).
func (cl *cluster) alterConfigs(forwarded bool, r *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	out, err := forward(cl, forwarded, r, func(r *kmsg.IncrementalAlterConfigsResponse) []int16 {
		return errorCodes(r.Resources, func(rr kmsg.IncrementalAlterConfigsResponseResource) int16 { return rr.ErrorCode })
	})
	if err == nil {
		return out
	}
	out = r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
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
	if !r.ValidateOnly {
		cl.waitApplied()
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

// applyConfigOps applies IncrementalAlterConfigs operations to a topic's overrides and returns
// the new overrides (props' are not modified); APPEND and SUBTRACT work on the effective value
// of list configs.
func applyConfigOps(props topicProps, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, *kerr.Error, string) {
	next := maps.Clone(props.overrides)
	if next == nil {
		next = map[string]string{}
	}
	for _, op := range ops {
		tc, ok := topicConfigs[op.Name]
		if !ok {
			return nil, kerr.InvalidConfig, "unknown topic config " + op.Name
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
			if tc.typ != 7 {
				return nil, kerr.InvalidConfig, "APPEND and SUBTRACT apply only to list configs; " + op.Name + " is not one"
			}
			items := strings.Split(topicProps{broker: props.broker, overrides: next}.get(op.Name), ",")
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
