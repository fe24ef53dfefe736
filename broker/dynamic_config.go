package broker

// Dynamic broker configs (KIP-226). IncrementalAlterConfigs stores them in the controller
// quorum's image for the cluster-wide default resource ("") or one broker's resource (its
// id); every broker applies the two layers that concern it when it applies an image, over its
// static settings: per broker, then cluster default, then --set, then Kafka's default. The
// configs that may change dynamically are the broker-level defaults of topic configs (the
// log.* synonyms, message.max.bytes, min.insync.replicas, unclean.leader.election.enable,
// compression.type), all "cluster-wide" in Kafka's terms: settable per broker or as the
// default. Other keys are read-only, as in Kafka.

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

// dynamicConfigs is the dynamic layer of a broker's settings, swapped whole when an image
// changes it.
type dynamicConfigs struct {
	cur atomic.Pointer[dynamicLayers]
}

// dynamicLayers are the dynamic configs that apply to one broker: its own and the
// cluster-wide defaults.
type dynamicLayers struct {
	broker, cluster map[string]string
}

// layers returns the current dynamic layers (empty ones before the first image).
func (c *Config) layers() dynamicLayers {
	if c.dynamic == nil {
		return dynamicLayers{}
	}
	if l := c.dynamic.cur.Load(); l != nil {
		return *l
	}
	return dynamicLayers{}
}

// propSource returns the broker setting k and where it comes from, in Kafka's order of
// precedence.
func (c *Config) propSource(k string) (string, kmsg.ConfigSource) {
	l := c.layers()
	if v, ok := l.broker[k]; ok {
		return v, kmsg.ConfigSourceDynamicBrokerConfig
	}
	if v, ok := l.cluster[k]; ok {
		return v, kmsg.ConfigSourceDynamicDefaultBrokerConfig
	}
	if v, ok := c.Props[k]; ok {
		return v, kmsg.ConfigSourceStaticBrokerConfig
	}
	return brokerProps[k], kmsg.ConfigSourceDefaultConfig
}

// propSynonyms lists every level that sets broker setting k, highest precedence first, as
// DescribeConfigs reports synonyms; Kafka's default is always last.
func (c *Config) propSynonyms(k string) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	l := c.layers()
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	for _, lv := range []struct {
		m   map[string]string
		src kmsg.ConfigSource
	}{{l.broker, kmsg.ConfigSourceDynamicBrokerConfig}, {l.cluster, kmsg.ConfigSourceDynamicDefaultBrokerConfig}, {c.Props, kmsg.ConfigSourceStaticBrokerConfig}} {
		if v, ok := lv.m[k]; ok {
			out = append(out, synonym(k, v, lv.src))
		}
	}
	return append(out, synonym(k, brokerProps[k], kmsg.ConfigSourceDefaultConfig))
}

// applyDynamic installs this broker's dynamic configs from img and reports whether they
// changed.
func (c *Config) applyDynamic(img *controller.Image) bool {
	next := dynamicLayers{broker: img.BrokerConfigs[strconv.Itoa(int(c.NodeID))], cluster: img.BrokerConfigs[""]}
	cur := c.layers()
	if maps.Equal(cur.broker, next.broker) && maps.Equal(cur.cluster, next.cluster) {
		return false
	}
	c.dynamic.cur.Store(&next)
	return true
}

// dynamicBrokerConfig reports whether broker setting k may change dynamically: it is the
// broker-level default of a topic config.
func dynamicBrokerConfig(k string) bool {
	_, ok := topicConfigFor(k)
	return ok
}

// topicConfigFor returns the topic config whose broker-level default is k.
func topicConfigFor(k string) (topicConfig, bool) {
	for _, tc := range topicConfigs {
		if tc.synonym == k {
			return tc, true
		}
	}
	return topicConfig{}, false
}

// validateBrokerConfigs checks one broker resource's dynamic configs as Kafka's
// DynamicBrokerConfig.validate does: known keys that may change dynamically, with valid
// values. It is the controller's ValidateBrokerConfigs.
func validateBrokerConfigs(cfgs map[string]string) error {
	var static []string
	for _, k := range sortedKeys(cfgs) {
		if _, known := brokerProps[k]; !known {
			return fmt.Errorf("unknown broker config %q", k)
		}
		if !dynamicBrokerConfig(k) {
			static = append(static, k)
		}
	}
	if len(static) > 0 {
		return fmt.Errorf("cannot update these configs dynamically: %s", strings.Join(static, ", "))
	}
	for _, k := range sortedKeys(cfgs) {
		tc, _ := topicConfigFor(k)
		if err := tc.check(cfgs[k]); err != nil {
			return fmt.Errorf("invalid value %q for %s: %w", cfgs[k], k, err)
		}
	}
	return nil
}
