package broker

// DescribeConfigs (key 32), versions 1-4.
//
// Behaviour: for a topic resource (type 2) every topic config the broker honours (or the
// ConfigNames asked for), with its value and source: DYNAMIC_TOPIC_CONFIG for an override,
// STATIC_BROKER_CONFIG when the broker was started with its synonym set, DEFAULT_CONFIG
// otherwise; synonyms when asked (v1+), type and documentation (v3+). For a broker resource
// (type 4, this node's id or empty) the broker settings, read-only. Unknown topics get
// UNKNOWN_TOPIC_OR_PARTITION, other resource types INVALID_REQUEST.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config sources, as kmsg.ConfigSource numbers them.
const (
	sourceDynamicTopic = 1
	sourceStaticBroker = 4
	sourceDefault      = 5
)

func handleDescribeConfigs(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		names := map[string]bool{}
		for _, n := range rr.ConfigNames {
			names[n] = true
		}
		if rr.ConfigNames == nil {
			names = nil
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := c.b.cl.topicForConfigs(rr.ResourceName)
			if t == nil {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			sr.Configs = c.b.describeTopicConfigs(t, names, r.IncludeSynonyms, r.IncludeDocumentation)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(c.b.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "unknown broker id " + rr.ResourceName
				sr.ErrorMessage = &msg
				break
			}
			sr.Configs = c.b.describeBrokerConfigs(names)
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "only topic and broker configs can be described"
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// describeTopicConfigs lists t's effective configs (only names when non-nil).
func (b *Broker) describeTopicConfigs(t *topic, names map[string]bool, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range sortedKeys(topicConfigs) {
		if names != nil && !names[name] {
			continue
		}
		tc := topicConfigs[name]
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		e.Name = name
		v := t.props(b).get(name)
		e.Value = &v
		e.ConfigType = kmsg.ConfigType(tc.typ)
		e.Source = sourceDefault
		_, static := b.cfg.Props[tc.synonym]
		if static {
			e.Source = sourceStaticBroker
		}
		if _, ok := t.configs[name]; ok {
			e.Source = sourceDynamicTopic
		}
		if synonyms {
			if ov, ok := t.configs[name]; ok {
				e.ConfigSynonyms = append(e.ConfigSynonyms, synonym(name, ov, sourceDynamicTopic))
			}
			if static {
				e.ConfigSynonyms = append(e.ConfigSynonyms, synonym(tc.synonym, b.cfg.Props[tc.synonym], sourceStaticBroker))
			}
			e.ConfigSynonyms = append(e.ConfigSynonyms, synonym(tc.synonym, brokerProps[tc.synonym], sourceDefault))
		}
		if docs {
			d := "Kafka topic config " + name + "; broker default from " + tc.synonym + "."
			e.Documentation = &d
		}
		out = append(out, e)
	}
	return out
}

func synonym(name, value string, source kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Source = name, source
	s.Value = &value
	return s
}

// describeBrokerConfigs lists the broker settings (read-only).
func (b *Broker) describeBrokerConfigs(names map[string]bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range sortedKeys(brokerProps) {
		if names != nil && !names[name] {
			continue
		}
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		e.Name = name
		v := b.cfg.prop(name)
		e.Value = &v
		e.ReadOnly = true
		e.Source = sourceDefault
		if _, ok := b.cfg.Props[name]; ok {
			e.Source = sourceStaticBroker
		}
		out = append(out, e)
	}
	return out
}

// topicForConfigs returns a topic value carrying name's config overrides from the metadata
// image, for DescribeConfigs, or nil when the topic does not exist.
func (cl *cluster) topicForConfigs(name string) *topic {
	t := cl.ctl.Image().Topics[name]
	if t == nil {
		return nil
	}
	return &topic{name: t.Name, id: t.ID, configs: t.Configs}
}
