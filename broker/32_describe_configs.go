package broker

// DescribeConfigs (key 32), versions 1-4.
//
// Behaviour: for a topic resource (type 2) every topic config the broker honours (or the
// ConfigNames asked for), with its value and source, in Kafka's order of precedence:
// DYNAMIC_TOPIC_CONFIG for the topic's override, else the source of its broker-level
// synonym (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG,
// DEFAULT_CONFIG); synonyms when asked (v1+), highest precedence first; type and
// documentation (v3+). For a broker resource (type 4) named with this node's id, every broker
// setting with its source and synonyms, read-only unless it may change dynamically (see
// 44_incremental_alter_configs.go); for the broker resource "" the cluster-wide dynamic
// defaults only (DYNAMIC_DEFAULT_BROKER_CONFIG), as Kafka answers. Unknown topics get
// UNKNOWN_TOPIC_OR_PARTITION; another broker's id, or another resource type, INVALID_REQUEST.
// What differs from Kafka: the broker settings listed are those the reference broker
// understands (brokerProps), not all of Kafka's.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
		self := strconv.Itoa(int(c.b.cfg.NodeID))
		switch {
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			t := c.b.cl.topicForConfigs(rr.ResourceName)
			if t == nil {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			sr.Configs = c.b.describeTopicConfigs(t, names, r.IncludeSynonyms, r.IncludeDocumentation)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker && (rr.ResourceName == "" || rr.ResourceName == self):
			sr.Configs = c.b.describeBrokerConfigs(rr.ResourceName != "", names, r.IncludeSynonyms, r.IncludeDocumentation)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "Unexpected broker id, expected " + self + " or empty string, but received " + rr.ResourceName
			sr.ErrorMessage = &msg
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
		_, e.Source = b.cfg.propSource(tc.synonym)
		ov, overridden := t.configs[name]
		if overridden {
			e.Source = kmsg.ConfigSourceDynamicTopicConfig
		}
		if synonyms {
			if overridden {
				e.ConfigSynonyms = append(e.ConfigSynonyms, synonym(name, ov, kmsg.ConfigSourceDynamicTopicConfig))
			}
			e.ConfigSynonyms = append(e.ConfigSynonyms, b.cfg.propSynonyms(tc.synonym)...)
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

// describeBrokerConfigs lists the broker settings: with perBroker every setting as this
// broker resolves it, else only the cluster-wide dynamic defaults.
func (b *Broker) describeBrokerConfigs(perBroker bool, names map[string]bool, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	keys := sortedKeys(brokerProps)
	if !perBroker {
		keys = sortedKeys(b.cfg.layers().cluster)
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range keys {
		if names != nil && !names[name] {
			continue
		}
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		e.Name = name
		v, src := b.cfg.propSource(name)
		syns := b.cfg.propSynonyms(name)
		if !perBroker {
			v, src = b.cfg.layers().cluster[name], kmsg.ConfigSourceDynamicDefaultBrokerConfig
			for len(syns) > 0 && syns[0].Source == kmsg.ConfigSourceDynamicBrokerConfig {
				syns = syns[1:]
			}
		}
		e.Value, e.Source = &v, src
		e.ReadOnly = !dynamicBrokerConfig(name)
		e.ConfigType = brokerConfigType(name)
		if synonyms {
			e.ConfigSynonyms = syns
		}
		if docs {
			d := "Kafka broker config " + name + "."
			if !e.ReadOnly {
				d += " Dynamic (cluster-wide): settable per broker or as the cluster default."
			}
			e.Documentation = &d
		}
		out = append(out, e)
	}
	return out
}

// brokerConfigType is broker setting name's Kafka type: its topic config's, else boolean,
// long or string as its default reads.
func brokerConfigType(name string) kmsg.ConfigType {
	if tc, ok := topicConfigFor(name); ok {
		return kmsg.ConfigType(tc.typ)
	}
	def := brokerProps[name]
	if def == "true" || def == "false" {
		return kmsg.ConfigTypeBoolean
	}
	if _, err := strconv.ParseInt(def, 10, 64); err == nil {
		return kmsg.ConfigTypeLong
	}
	return kmsg.ConfigTypeString
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
