package controller

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// NoLeader is the leader id of an offline partition.
const NoLeader int32 = -1

// TopicID is a topic's 16-byte id, as in Kafka's Metadata v10+. It encodes as 32 hex digits.
type TopicID [16]byte

// String returns the id as 32 hex digits.
func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id as 32 hex digits.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes 32 hex digits.
func (id *TopicID) UnmarshalText(b []byte) error {
	raw, err := hex.DecodeString(string(b))
	if err != nil || len(raw) != len(id) {
		return fmt.Errorf("controller: bad topic id %q", b)
	}
	copy(id[:], raw)
	return nil
}

// Broker is a broker's registration in the metadata image.
type Broker struct {
	// ID is the broker's node.id.
	ID int32 `json:"id"`
	// Host and Port are the broker's Kafka listener, as put in Metadata responses.
	Host string `json:"host"`
	Port int32  `json:"port"`
	// Rack is broker.rack; empty when unset.
	Rack string `json:"rack,omitempty"`
	// Epoch is the broker epoch: the Raft log index of the registration record, so it grows on
	// every re-registration (KRaft uses the record's offset the same way).
	Epoch int64 `json:"epoch"`
	// Fenced brokers lead nothing and are not eligible for ISRs. A broker registers fenced and
	// is unfenced by its first heartbeat (as in KRaft).
	Fenced bool `json:"fenced"`
	// RegisteredAt and UnfencedAt are the active controller's clock at those events;
	// UnfencedAt is zero while the broker has never been unfenced in this registration.
	RegisteredAt time.Time `json:"registeredAt"`
	UnfencedAt   time.Time `json:"unfencedAt,omitzero"`
	// Listeners are the broker's client listeners besides Host:Port (SSL, SASL_SSL, ...),
	// so Metadata can answer each client with the listener it connected on.
	Listeners []Endpoint `json:"listeners,omitempty"`
}

// Endpoint is one named listener of a broker.
type Endpoint struct {
	Name string `json:"name"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// Endpoint returns the broker's listener called name.
func (b *Broker) Endpoint(name string) (Endpoint, bool) {
	for _, e := range b.Listeners {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

// Partition is one partition's assignment and leadership.
type Partition struct {
	// Replicas is the assignment in preference order; Replicas[0] is the preferred leader.
	Replicas []int32 `json:"replicas"`
	// ISR is the in-sync replica set, in the order it was last written. When the last in-sync
	// replica dies it stays in the ISR (the last known set), as in KRaft.
	ISR []int32 `json:"isr"`
	// Leader is the leader's broker id, or NoLeader (-1) when the partition is offline.
	Leader int32 `json:"leader"`
	// LeaderEpoch grows every time the leader changes (including to and from NoLeader).
	LeaderEpoch int32 `json:"leaderEpoch"`
	// PartitionEpoch grows on every change of the partition (leader, ISR, replicas);
	// AlterPartition requests carrying an older one are rejected with INVALID_UPDATE_VERSION.
	PartitionEpoch int32 `json:"partitionEpoch"`
	// AddingReplicas and RemovingReplicas are the reassignment in flight (KIP-455), empty when
	// none: Replicas is then the target followed by the removing replicas, and the
	// reassignment completes once every target replica is in the ISR.
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// clone returns a deep copy of p.
func (p *Partition) clone() *Partition {
	c := *p
	c.Replicas = slices.Clone(p.Replicas)
	c.ISR = slices.Clone(p.ISR)
	c.AddingReplicas = slices.Clone(p.AddingReplicas)
	c.RemovingReplicas = slices.Clone(p.RemovingReplicas)
	return &c
}

// Reassigning reports whether a reassignment of p is in flight.
func (p *Partition) Reassigning() bool { return len(p.AddingReplicas)+len(p.RemovingReplicas) > 0 }

// TargetReplicas returns the replicas p has once its reassignment completes (Replicas
// without the removing ones); Replicas when none is in flight.
func (p *Partition) TargetReplicas() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.RemovingReplicas, r) })
}

// OriginalReplicas returns the replicas p had before its reassignment began (Replicas
// without the adding ones); Replicas when none is in flight.
func (p *Partition) OriginalReplicas() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.AddingReplicas, r) })
}

// InISR reports whether broker id is in the ISR.
func (p *Partition) InISR(id int32) bool { return slices.Contains(p.ISR, id) }

// Topic is one topic: identity, config overrides and partitions.
type Topic struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id"`
	// Configs are the topic-level config overrides only (defaults are the broker's business).
	Configs map[string]string `json:"configs,omitempty"`
	// Partitions are indexed by partition number.
	Partitions []*Partition `json:"partitions"`
}

// shallowClone copies the topic and its partition slice but shares the partitions.
func (t *Topic) shallowClone() *Topic {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	return &c
}

// Stats are cluster-wide counters kept in the image, so every node reports the same numbers
// and they survive controller failover and snapshots.
type Stats struct {
	// LeaderElections counts leader changes to a live broker (clean, unclean and preferred).
	LeaderElections int64 `json:"leaderElections"`
	// UncleanLeaderElections counts elections of an out-of-sync replica.
	UncleanLeaderElections int64 `json:"uncleanLeaderElections"`
	// ISRShrinks and ISRExpands count partition changes that removed or added ISR members.
	ISRShrinks int64 `json:"isrShrinks"`
	ISRExpands int64 `json:"isrExpands"`
	// BrokerFencings counts live brokers fenced (session expiry, controlled shutdown,
	// re-registration of a new incarnation).
	BrokerFencings int64 `json:"brokerFencings"`
}

// Image is an immutable snapshot of the cluster metadata: what every controller node's FSM
// holds after applying the Raft log up to Index. Callers must not modify anything reachable
// from an Image; the FSM replaces changed parts (copy-on-write) and publishes a new Image.
type Image struct {
	// Index is the Raft log index of the last record applied (0 for the empty image).
	Index uint64 `json:"index"`
	// Brokers by id.
	Brokers map[int32]*Broker `json:"brokers"`
	// Topics by name.
	Topics map[string]*Topic `json:"topics"`
	// BrokerConfigs are the dynamic broker configs (KIP-226) by resource name: "" for the
	// cluster-wide defaults, a broker id in decimal for one broker's own.
	BrokerConfigs map[string]map[string]string `json:"brokerConfigs,omitempty"`
	// Stats are the cluster's election and ISR counters.
	Stats Stats `json:"stats"`
	// Scram holds users' SCRAM credentials by name and mechanism (scram.go).
	Scram map[string]map[int8]*ScramCredential `json:"scram,omitempty"`
}

// emptyImage returns the image before any record.
func emptyImage() *Image {
	return &Image{Brokers: map[int32]*Broker{}, Topics: map[string]*Topic{}}
}

// shallowClone copies the maps (not their values), for copy-on-write updates.
func (img *Image) shallowClone() *Image {
	c := *img
	c.Brokers = maps.Clone(img.Brokers)
	c.Topics = maps.Clone(img.Topics)
	c.Scram = maps.Clone(img.Scram)
	c.BrokerConfigs = maps.Clone(img.BrokerConfigs)
	return &c
}

// BrokerConfig returns the dynamic config key of broker id (its own, else the cluster-wide
// default) and whether either sets it.
func (img *Image) BrokerConfig(id int32, key string) (string, bool) {
	if v, ok := img.BrokerConfigs[strconv.Itoa(int(id))][key]; ok {
		return v, true
	}
	v, ok := img.BrokerConfigs[""][key]
	return v, ok
}

// Live reports whether broker id is registered and unfenced.
func (img *Image) Live(id int32) bool {
	b, ok := img.Brokers[id]
	return ok && !b.Fenced
}

// LiveBrokers returns the ids of registered, unfenced brokers in ascending order.
func (img *Image) LiveBrokers() []int32 {
	var ids []int32
	for id, b := range img.Brokers {
		if !b.Fenced {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// TopicByID returns the topic with the given id, or nil.
func (img *Image) TopicByID(id TopicID) *Topic {
	for _, t := range img.Topics {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Partition returns partition p of topic, or nil when either does not exist.
func (img *Image) Partition(topic string, p int32) *Partition {
	t := img.Topics[topic]
	if t == nil || p < 0 || int(p) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[p]
}

// OfflinePartitions counts partitions without a leader (Kafka's OfflinePartitionsCount).
func (img *Image) OfflinePartitions() int {
	n := 0
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if p.Leader == NoLeader {
				n++
			}
		}
	}
	return n
}

// UnderReplicatedPartitions counts partitions whose ISR is smaller than their replica set.
func (img *Image) UnderReplicatedPartitions() int {
	n := 0
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if len(p.ISR) < len(p.Replicas) {
				n++
			}
		}
	}
	return n
}

// sortedTopicNames returns the topic names in ascending order, for deterministic iteration.
func (img *Image) sortedTopicNames() []string {
	return slices.Sorted(maps.Keys(img.Topics))
}
