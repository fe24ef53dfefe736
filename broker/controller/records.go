package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// entryVersion is the version of the Raft log entry encoding written by this code. Decoding
// rejects newer versions instead of misreading them. Version 2 added reassignments
// (ChangePartitionRecord.Assignment) and dynamic broker configs (BrokerConfigsRecord).
const entryVersion = 2

// entry is one Raft log entry: a batch of records applied atomically (all or none), like a
// KRaft record batch. The active controller decides a batch over the current image and
// proposes it; every node's FSM applies it deterministically.
type entry struct {
	V       int      `json:"v"`
	Records []Record `json:"records"`
}

// Record is one metadata change. Exactly one field is set; Type names it.
type Record struct {
	Type             string                  `json:"type"`
	RegisterBroker   *RegisterBrokerRecord   `json:"registerBroker,omitempty"`
	FenceBroker      *FenceBrokerRecord      `json:"fenceBroker,omitempty"`
	UnfenceBroker    *UnfenceBrokerRecord    `json:"unfenceBroker,omitempty"`
	CreateTopic      *CreateTopicRecord      `json:"createTopic,omitempty"`
	DeleteTopic      *DeleteTopicRecord      `json:"deleteTopic,omitempty"`
	CreatePartitions *CreatePartitionsRecord `json:"createPartitions,omitempty"`
	AlterConfigs     *AlterConfigsRecord     `json:"alterConfigs,omitempty"`
	ChangePartition  *ChangePartitionRecord  `json:"changePartition,omitempty"`
	BrokerConfigs    *BrokerConfigsRecord    `json:"brokerConfigs,omitempty"`
	// SCRAM credentials (scram.go).
	ScramCredential       *ScramCredentialRecord       `json:"scramCredential,omitempty"`
	RemoveScramCredential *RemoveScramCredentialRecord `json:"removeScramCredential,omitempty"`
}

// Record type names.
const (
	TypeRegisterBroker   = "RegisterBroker"
	TypeFenceBroker      = "FenceBroker"
	TypeUnfenceBroker    = "UnfenceBroker"
	TypeCreateTopic      = "CreateTopic"
	TypeDeleteTopic      = "DeleteTopic"
	TypeCreatePartitions = "CreatePartitions"
	TypeAlterConfigs     = "AlterConfigs"
	TypeChangePartition  = "ChangePartition"
	TypeBrokerConfigs    = "BrokerConfigs"
)

// RegisterBrokerRecord (re-)registers a broker, fenced, with epoch = the entry's log index.
type RegisterBrokerRecord struct {
	ID   int32     `json:"id"`
	Host string    `json:"host"`
	Port int32     `json:"port"`
	Rack string    `json:"rack,omitempty"`
	Time time.Time `json:"time"`
	// Listeners are the broker's client listeners besides Host:Port, by listener name.
	Listeners []Endpoint `json:"listeners,omitempty"`
}

// FenceBrokerRecord fences a broker's current registration.
type FenceBrokerRecord struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// UnfenceBrokerRecord unfences a broker's current registration.
type UnfenceBrokerRecord struct {
	ID    int32     `json:"id"`
	Epoch int64     `json:"epoch"`
	Time  time.Time `json:"time"`
}

// CreateTopicRecord creates a topic with the assignment and leadership the controller chose.
type CreateTopicRecord struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []Partition       `json:"partitions"`
}

// DeleteTopicRecord deletes a topic.
type DeleteTopicRecord struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id"`
}

// CreatePartitionsRecord appends partitions to a topic.
type CreatePartitionsRecord struct {
	Name       string      `json:"name"`
	ID         TopicID     `json:"id"`
	Partitions []Partition `json:"partitions"`
}

// AlterConfigsRecord replaces a topic's config overrides.
type AlterConfigsRecord struct {
	Name    string            `json:"name"`
	ID      TopicID           `json:"id"`
	Configs map[string]string `json:"configs,omitempty"`
}

// ChangePartitionRecord sets a partition's leader and ISR. PartitionEpoch is the new epoch
// and must be the current one plus one, which fences changes decided over a stale image.
type ChangePartitionRecord struct {
	Topic          string  `json:"topic"`
	ID             TopicID `json:"id"`
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	ISR            []int32 `json:"isr"`
	LeaderEpoch    int32   `json:"leaderEpoch"`
	PartitionEpoch int32   `json:"partitionEpoch"`
	// Unclean marks an unclean leader election (an out-of-sync replica became leader).
	Unclean bool `json:"unclean,omitempty"`
	// Assignment, when set, replaces the partition's replicas and the reassignment in flight
	// (KIP-455); nil leaves them as they are.
	Assignment *AssignmentChange `json:"assignment,omitempty"`
}

// AssignmentChange is a partition's new replica set and reassignment state: Replicas in
// preference order, and the replicas a reassignment in flight is adding and removing (both
// empty when none is).
type AssignmentChange struct {
	Replicas []int32 `json:"replicas"`
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
}

// BrokerConfigsRecord replaces the dynamic configs of one broker resource (KIP-226): Name ""
// is the cluster-wide default, a decimal broker id that broker's own. Empty Configs removes
// the resource.
type BrokerConfigsRecord struct {
	Name    string            `json:"name"`
	Configs map[string]string `json:"configs,omitempty"`
}

// encodeEntry serialises a batch of records for the Raft log.
func encodeEntry(recs []Record) ([]byte, error) {
	b, err := json.Marshal(entry{V: entryVersion, Records: recs})
	if err != nil {
		return nil, fmt.Errorf("controller: encode entry: %w", err)
	}
	return b, nil
}

// decodeEntry parses a Raft log entry.
func decodeEntry(b []byte) ([]Record, error) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("controller: decode entry: %w", err)
	}
	if e.V < 1 || e.V > entryVersion {
		return nil, fmt.Errorf("controller: entry version %d not understood (max %d)", e.V, entryVersion)
	}
	return e.Records, nil
}

// applyRecords applies a batch to img as the entry at log index, returning the new image.
// It is pure and deterministic: every node computes the same image from the same log. A batch
// with any invalid record is rejected whole and img is unchanged.
func applyRecords(img *Image, index uint64, recs []Record) (*Image, error) {
	next := img.shallowClone()
	next.Index = index
	for i, r := range recs {
		if err := applyRecord(next, index, r); err != nil {
			return img, fmt.Errorf("controller: record %d (%s) at index %d: %w", i, r.Type, index, err)
		}
	}
	return next, nil
}

// applyRecord applies one record to next, whose maps are private to this batch but whose
// values are shared with older images and must be replaced, never modified.
func applyRecord(next *Image, index uint64, r Record) error {
	switch r.Type {
	case TypeRegisterBroker:
		rr := r.RegisterBroker
		if rr == nil {
			return fmt.Errorf("missing body")
		}
		next.Brokers[rr.ID] = &Broker{ID: rr.ID, Host: rr.Host, Port: rr.Port, Rack: rr.Rack, Epoch: int64(index), Fenced: true, RegisteredAt: rr.Time,
			Listeners: slices.Clone(rr.Listeners)}
	case TypeFenceBroker, TypeUnfenceBroker:
		var id int32
		var epoch int64
		if r.FenceBroker != nil {
			id, epoch = r.FenceBroker.ID, r.FenceBroker.Epoch
		} else if r.UnfenceBroker != nil {
			id, epoch = r.UnfenceBroker.ID, r.UnfenceBroker.Epoch
		} else {
			return fmt.Errorf("missing body")
		}
		b := next.Brokers[id]
		if b == nil || b.Epoch != epoch {
			return fmt.Errorf("broker %d epoch %d is not registered", id, epoch)
		}
		nb := *b
		nb.Fenced = r.Type == TypeFenceBroker
		if nb.Fenced && !b.Fenced {
			next.Stats.BrokerFencings++
		}
		if !nb.Fenced {
			nb.UnfencedAt = r.UnfenceBroker.Time
		}
		next.Brokers[id] = &nb
	case TypeCreateTopic:
		rr := r.CreateTopic
		if rr == nil {
			return fmt.Errorf("missing body")
		}
		if _, ok := next.Topics[rr.Name]; ok {
			return fmt.Errorf("topic %q already exists", rr.Name)
		}
		t := &Topic{Name: rr.Name, ID: rr.ID, Configs: maps.Clone(rr.Configs)}
		for i := range rr.Partitions {
			t.Partitions = append(t.Partitions, rr.Partitions[i].clone())
		}
		next.Topics[rr.Name] = t
	case TypeDeleteTopic:
		rr := r.DeleteTopic
		if rr == nil {
			return fmt.Errorf("missing body")
		}
		if _, err := topicFor(next, rr.Name, rr.ID); err != nil {
			return err
		}
		delete(next.Topics, rr.Name)
	case TypeCreatePartitions:
		rr := r.CreatePartitions
		if rr == nil {
			return fmt.Errorf("missing body")
		}
		t, err := topicFor(next, rr.Name, rr.ID)
		if err != nil {
			return err
		}
		nt := t.shallowClone()
		for i := range rr.Partitions {
			nt.Partitions = append(nt.Partitions, rr.Partitions[i].clone())
		}
		next.Topics[rr.Name] = nt
	case TypeAlterConfigs:
		rr := r.AlterConfigs
		if rr == nil {
			return fmt.Errorf("missing body")
		}
		t, err := topicFor(next, rr.Name, rr.ID)
		if err != nil {
			return err
		}
		nt := t.shallowClone()
		nt.Configs = maps.Clone(rr.Configs)
		next.Topics[rr.Name] = nt
	case TypeScramCredential, TypeRemoveScramCredential:
		return applyScram(next, r)
	case TypeChangePartition:
		rr := r.ChangePartition
		if rr == nil {
			return fmt.Errorf("missing body")
		}
		return applyChangePartition(next, rr)
	case TypeBrokerConfigs:
		rr := r.BrokerConfigs
		if rr == nil {
			return fmt.Errorf("missing body")
		}
		if err := validBrokerResource(rr.Name); err != nil {
			return err
		}
		if next.BrokerConfigs == nil {
			next.BrokerConfigs = map[string]map[string]string{}
		}
		if len(rr.Configs) == 0 {
			delete(next.BrokerConfigs, rr.Name)
		} else {
			next.BrokerConfigs[rr.Name] = maps.Clone(rr.Configs)
		}
	default:
		return fmt.Errorf("unknown record type %q", r.Type)
	}
	return nil
}

// checkPartition checks what every partition state must satisfy: replicas without
// duplicates, an ISR of replicas, a leader that is a replica (or none), and adding and
// removing replicas that are disjoint replicas.
func checkPartition(p *Partition) error {
	if len(p.Replicas) == 0 {
		return fmt.Errorf("no replicas")
	}
	for i, r := range p.Replicas {
		if slices.Contains(p.Replicas[:i], r) {
			return fmt.Errorf("replicas %v repeat %d", p.Replicas, r)
		}
	}
	for _, set := range [][]int32{p.ISR, p.AddingReplicas, p.RemovingReplicas} {
		for _, r := range set {
			if !slices.Contains(p.Replicas, r) {
				return fmt.Errorf("%d is not one of the replicas %v", r, p.Replicas)
			}
		}
	}
	for _, r := range p.AddingReplicas {
		if slices.Contains(p.RemovingReplicas, r) {
			return fmt.Errorf("%d is both adding and removing", r)
		}
	}
	if p.Leader != NoLeader && !slices.Contains(p.Replicas, p.Leader) {
		return fmt.Errorf("leader %d is not one of the replicas %v", p.Leader, p.Replicas)
	}
	return nil
}

// validBrokerResource checks a broker config resource name: "" or a broker id.
func validBrokerResource(name string) error {
	if name == "" {
		return nil
	}
	if n, err := strconv.ParseInt(name, 10, 32); err != nil || n < 0 || strconv.FormatInt(n, 10) != name {
		return fmt.Errorf("broker resource %q is neither \"\" nor a broker id", name)
	}
	return nil
}

func topicFor(img *Image, name string, id TopicID) (*Topic, error) {
	t := img.Topics[name]
	if t == nil || t.ID != id {
		return nil, fmt.Errorf("topic %q with id %s does not exist", name, id)
	}
	return t, nil
}

// applyChangePartition replaces one partition and updates the image's counters.
func applyChangePartition(next *Image, rr *ChangePartitionRecord) error {
	t, err := topicFor(next, rr.Topic, rr.ID)
	if err != nil {
		return err
	}
	if rr.Partition < 0 || int(rr.Partition) >= len(t.Partitions) {
		return fmt.Errorf("partition %s-%d does not exist", rr.Topic, rr.Partition)
	}
	old := t.Partitions[rr.Partition]
	if rr.PartitionEpoch != old.PartitionEpoch+1 {
		return fmt.Errorf("partition %s-%d: new partition epoch %d does not follow %d", rr.Topic, rr.Partition, rr.PartitionEpoch, old.PartitionEpoch)
	}
	if rr.LeaderEpoch < old.LeaderEpoch {
		return fmt.Errorf("partition %s-%d: leader epoch %d is older than %d", rr.Topic, rr.Partition, rr.LeaderEpoch, old.LeaderEpoch)
	}
	if len(rr.ISR) == 0 {
		return fmt.Errorf("partition %s-%d: empty ISR", rr.Topic, rr.Partition)
	}
	np := changed(old, rr)
	if err := checkPartition(np); err != nil {
		return fmt.Errorf("partition %s-%d: %w", rr.Topic, rr.Partition, err)
	}
	nt := t.shallowClone()
	nt.Partitions[rr.Partition] = np
	next.Topics[rr.Topic] = nt

	if np.Leader != old.Leader && np.Leader != NoLeader {
		next.Stats.LeaderElections++
	}
	if rr.Unclean {
		next.Stats.UncleanLeaderElections++
		return nil
	}
	for _, id := range old.ISR {
		if !slices.Contains(np.ISR, id) {
			next.Stats.ISRShrinks++
			break
		}
	}
	for _, id := range np.ISR {
		if !slices.Contains(old.ISR, id) {
			next.Stats.ISRExpands++
			break
		}
	}
	return nil
}
