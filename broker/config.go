package broker

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kchaos/kchaos/broker/storage"
)

// Config is a broker's configuration: its identity and addresses plus server.properties-style
// settings given with --set key=value.
type Config struct {
	// NodeID is the broker's node.id.
	NodeID int32
	// Listen is the client listener address; default 127.0.0.1:9092.
	Listen string
	// AdvertisedAddr is the host:port put in metadata; default Listen's actual address.
	AdvertisedAddr string
	// DataDir holds the partition logs and the broker's metadata.
	DataDir string
	// MetricsAddr, when set, serves Prometheus metrics on http://MetricsAddr/metrics.
	MetricsAddr string
	// ClusterID is reported in Metadata and DescribeCluster; default "kchaos-local".
	ClusterID string
	// Props are server.properties settings (see brokerProps for the keys understood).
	Props map[string]string

	// Voters maps the controller quorum's voters (node ids) to their Raft addresses, like
	// KRaft's controller.quorum.voters; metadata lives in the quorum's Raft log under
	// DataDir/controller. Empty: a cluster of one, this broker its only voter.
	Voters map[int32]string
	// ControllerListen is this node's controller listener (Raft and the controller APIs);
	// default its Voters entry, or with no Voters an ephemeral port on Listen's host. Required
	// for a broker that is not a voter (an observer).
	ControllerListen string
	// Peers maps broker ids to the Kafka address this broker dials to reach them (replica
	// fetches, controller requests); brokers not listed are dialled at their registered
	// address. The chaos layer points entries at per-link proxies.
	Peers map[int32]string
	// RaftPeers maps voter ids to the Raft address this node dials to reach them; default
	// their Voters address.
	RaftPeers map[int32]string

	// dynamic holds the dynamic broker configs (KIP-226) from the metadata image; nil until
	// New sets it. Copies of the Config share it.
	dynamic *dynamicConfigs
}

// brokerProps are the broker-level settings understood, with Kafka's defaults. Topic-level
// configs default to their broker-level "log.*" synonym (see topicConfigs).
var brokerProps = map[string]string{
	"auto.create.topics.enable":        "true",
	"num.partitions":                   "1",
	"default.replication.factor":       "1",
	"socket.request.max.bytes":         "104857600",
	"queued.max.request.bytes":         "-1",
	"message.max.bytes":                "1048588",
	"log.segment.bytes":                "1073741824",
	"log.roll.ms":                      "604800000",
	"log.index.interval.bytes":         "4096",
	"log.index.size.max.bytes":         "10485760",
	"log.flush.interval.messages":      "9223372036854775807",
	"log.flush.interval.ms":            "9223372036854775807",
	"log.retention.ms":                 "604800000",
	"log.retention.bytes":              "-1",
	"log.cleanup.policy":               "delete",
	"log.cleaner.delete.retention.ms":  "86400000",
	"log.message.timestamp.type":       "CreateTime",
	"min.insync.replicas":              "1",
	"unclean.leader.election.enable":   "false",
	"compression.type":                 "producer",
	"log.retention.check.interval.ms":  "1000",
	"group.initial.rebalance.delay.ms": "3000",
	"group.min.session.timeout.ms":     "6000",
	"group.max.session.timeout.ms":     "1800000",
	"offsets.topic.num.partitions":     "50",
	"producer.id.expiration.ms":        "86400000",
	// Fetch sessions (KIP-227); 0 disables them.
	"max.incremental.fetch.session.cache.slots": "1000",
	// Transaction coordinator (Kafka's defaults).
	"transaction.state.log.num.partitions":                        "50",
	"transaction.state.log.replication.factor":                    "3",
	"transaction.max.timeout.ms":                                  "900000",
	"transaction.abort.timed.out.transaction.cleanup.interval.ms": "10000",
	// Replication and the controller quorum. Kafka's defaults, except where the launcher
	// passes shorter ones for fast failover; a quorum of one voter ignores the two
	// controller.quorum timeouts (see loneVoterRaftTimeout).
	"offsets.topic.replication.factor":        "3",
	"replica.lag.time.max.ms":                 "30000",
	"replica.fetch.wait.max.ms":               "500",
	"replica.fetch.min.bytes":                 "1",
	"replica.fetch.max.bytes":                 "1048576",
	"replica.fetch.response.max.bytes":        "10485760",
	"replica.fetch.backoff.ms":                "1000",
	"broker.session.timeout.ms":               "9000",
	"broker.heartbeat.interval.ms":            "2000",
	"controller.quorum.election.timeout.ms":   "1000",
	"controller.quorum.fetch.timeout.ms":      "2000",
	"auto.leader.rebalance.enable":            "true",
	"leader.imbalance.check.interval.seconds": "300",
	// Bug switches (see bugs.go): off by default, for the checker's mutation tests only.
	bugAckBeforeReplication: "false",
	bugTxnCommitOnAbort:     "false",
	bugTxnSplitMarkers:      "false",
	bugTxnOffsetsEarly:      "false",
	bugLoseLastBatch:        "false",
	bugReadAboveHW:          "false",
	bugSkipIdempotence:      "false",
	bugServeCorrupt:         "false",
}

// ValidateProps checks that every key is a known broker setting with a value of the right
// type, so a typo in --set fails at start-up instead of being ignored.
func ValidateProps(props map[string]string) error {
	for k, v := range props {
		if known, err := securityProp(k, v); known || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		def, ok := brokerProps[k]
		if !ok {
			return fmt.Errorf("broker: unknown setting %q (known: %s)", k, strings.Join(sortedKeys(brokerProps), ", "))
		}
		if _, err := strconv.ParseInt(def, 10, 64); err == nil {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("broker: setting %s=%q: want an integer", k, v)
			}
		}
		if def == "true" || def == "false" {
			if _, err := strconv.ParseBool(v); err != nil {
				return fmt.Errorf("broker: setting %s=%q: want true or false", k, v)
			}
		}
	}
	return nil
}

// prop returns the broker setting k as Kafka resolves it: this broker's dynamic config, the
// cluster-wide dynamic default, the static setting (--set), Kafka's default.
func (c *Config) prop(k string) string {
	v, _ := c.propSource(k)
	return v
}

func (c *Config) propInt(k string) int64 {
	n, err := strconv.ParseInt(c.prop(k), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (c *Config) propBool(k string) bool { return c.prop(k) == "true" }

// topicConfig describes one topic-level config: its broker-level synonym (the default), its
// Kafka type for DescribeConfigs, and a validator.
type topicConfig struct {
	synonym string
	typ     int8 // kmsg.ConfigType values: 1 boolean, 2 string, 3 int, 4 short, 5 long, 6 double, 7 list, 8 class, 9 password
	check   func(string) error
}

func intIn(lo, hi int64) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be an integer in [%d, %d]", lo, hi)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, v := range vals {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

var boolCheck = oneOf("true", "false")

// topicConfigs are the topic-level configs the broker honours. compression.type accepts only
// "producer": the reference broker never recompresses (a deliberate difference from Kafka).
var topicConfigs = map[string]topicConfig{
	"segment.bytes":                  {"log.segment.bytes", 3, intIn(14, math.MaxInt32)},
	"segment.ms":                     {"log.roll.ms", 5, intIn(1, math.MaxInt64)},
	"segment.index.bytes":            {"log.index.size.max.bytes", 3, intIn(4, math.MaxInt32)},
	"index.interval.bytes":           {"log.index.interval.bytes", 3, intIn(0, math.MaxInt32)},
	"flush.messages":                 {"log.flush.interval.messages", 5, intIn(1, math.MaxInt64)},
	"flush.ms":                       {"log.flush.interval.ms", 5, intIn(0, math.MaxInt64)},
	"retention.ms":                   {"log.retention.ms", 5, intIn(-1, math.MaxInt64)},
	"retention.bytes":                {"log.retention.bytes", 5, intIn(-1, math.MaxInt64)},
	"cleanup.policy":                 {"log.cleanup.policy", 7, oneOf("delete", "compact", "compact,delete", "delete,compact")},
	"delete.retention.ms":            {"log.cleaner.delete.retention.ms", 5, intIn(0, math.MaxInt64)},
	"message.timestamp.type":         {"log.message.timestamp.type", 2, oneOf("CreateTime", "LogAppendTime")},
	"max.message.bytes":              {"message.max.bytes", 3, intIn(0, math.MaxInt32)},
	"min.insync.replicas":            {"min.insync.replicas", 3, intIn(1, math.MaxInt32)},
	"unclean.leader.election.enable": {"unclean.leader.election.enable", 1, boolCheck},
	"compression.type":               {"compression.type", 2, oneOf("producer")},
}

// topicProps resolves a topic's effective configs: its overrides over the broker settings.
type topicProps struct {
	broker    *Config
	overrides map[string]string
}

func (t topicProps) get(k string) string {
	if v, ok := t.overrides[k]; ok {
		return v
	}
	return t.broker.prop(topicConfigs[k].synonym)
}

func (t topicProps) int(k string) int64 {
	n, _ := strconv.ParseInt(t.get(k), 10, 64)
	return n
}

// storageConfig maps the topic's effective configs onto the log's Config.
func (t topicProps) storageConfig() storage.Config {
	ms := func(k string) time.Duration {
		n := t.int(k)
		if n < 0 {
			return -1
		}
		if n > math.MaxInt64/int64(time.Millisecond) {
			return math.MaxInt64 // "never"
		}
		return time.Duration(n) * time.Millisecond
	}
	retentionBytes := t.int("retention.bytes")
	if retentionBytes == 0 {
		retentionBytes = storage.RetentionBytesZero
	}
	return storage.Config{
		SegmentBytes:       t.int("segment.bytes"),
		SegmentMs:          ms("segment.ms"),
		IndexIntervalBytes: int(t.int("index.interval.bytes")),
		SegmentIndexBytes:  int(t.int("segment.index.bytes")),
		FlushMessages:      t.int("flush.messages"),
		FlushMs:            ms("flush.ms"),
		RetentionMs:        ms("retention.ms"),
		RetentionBytes:     retentionBytes,
		CleanupPolicy:      t.get("cleanup.policy"),
		DeleteRetentionMs:  ms("delete.retention.ms"),
	}
}

// validateTopicConfigs checks names and values of topic config overrides.
func validateTopicConfigs(cfgs map[string]string) error {
	for k, v := range cfgs {
		tc, ok := topicConfigs[k]
		if !ok {
			return fmt.Errorf("unknown topic config %q", k)
		}
		if err := tc.check(v); err != nil {
			return fmt.Errorf("invalid value %q for %s: %w", v, k, err)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// isVoter reports whether this node is a controller-quorum voter.
func (c *Config) isVoter() bool {
	_, ok := c.Voters[c.NodeID]
	return ok
}
