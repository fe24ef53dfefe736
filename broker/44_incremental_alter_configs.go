package broker

// IncrementalAlterConfigs (key 44), versions 0-1.
//
// Behaviour: for topic resources applies SET, DELETE (back to the default), APPEND and
// SUBTRACT (list configs: cleanup.policy) to the topic's overrides, validating names and
// values first (INVALID_CONFIG; nothing of a failed resource is applied). ValidateOnly changes
// nothing. New values take effect on the topic's logs at once and survive restarts. Unknown
// topics get UNKNOWN_TOPIC_OR_PARTITION. Differences from Kafka: dynamic broker configs (type
// 4) are refused with INVALID_REQUEST; set broker settings with --set at start-up.

import (
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleIncrementalAlterConfigs(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.IncrementalAlterConfigsRequest)
	if c.b.cl != nil {
		return c.b.cl.alterConfigs(c.controllerPlane, r), nil
	}
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var e *kerr.Error
		var msg string
		if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
			e, msg = kerr.InvalidRequest, "only topic configs can be altered; broker settings are static (--set)"
		} else {
			e, msg = c.b.alterTopicConfigs(rr, r.ValidateOnly)
		}
		if e != nil {
			sr.ErrorCode = e.Code
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (b *Broker) alterTopicConfigs(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) (*kerr.Error, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[rr.ResourceName]
	if t == nil {
		return kerr.UnknownTopicOrPartition, "topic " + rr.ResourceName + " does not exist"
	}
	next, e, msg := applyConfigOps(t.props(b), rr.Configs)
	if e != nil {
		return e, msg
	}
	if err := validateTopicConfigs(next); err != nil {
		return kerr.InvalidConfig, err.Error()
	}
	if validateOnly {
		return nil, ""
	}
	t.configs = next
	cfg := t.props(b).storageConfig()
	for _, p := range t.partitions {
		p.log.SetConfig(cfg)
	}
	if err := b.saveTopics(); err != nil {
		return kerr.KafkaStorageError, err.Error()
	}
	return nil, ""
}

// applyConfigOps applies IncrementalAlterConfigs operations to a topic's overrides and returns
// the new overrides (props' are not modified); APPEND and SUBTRACT work on the effective value
// of list configs. Single-node and cluster mode both use it.
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
