package controller

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// MaxPartitions is the most partitions one topic may have.
const MaxPartitions = 100000

// validateConfigs checks topic config overrides: the controller's own keys by type, then the
// caller's validator (the broker's knowledge of every topic config) if any.
func validateConfigs(configs map[string]string, validate func(map[string]string) error) error {
	if v, ok := configs[UncleanLeaderElectionConfig]; ok {
		if _, err := strconv.ParseBool(v); err != nil {
			return errorf(kerr.InvalidConfig, "%s=%q: want true or false", UncleanLeaderElectionConfig, v)
		}
	}
	if validate != nil {
		if err := validate(configs); err != nil {
			return errorf(kerr.InvalidConfig, "%v", err)
		}
	}
	return nil
}

// newPartitions builds fresh partitions for the given assignments: the whole assignment is
// the ISR (every replica was live when placed) and replicas[0] leads at leader epoch 0.
func newPartitions(assignments [][]int32) []Partition {
	out := make([]Partition, len(assignments))
	for i, a := range assignments {
		out[i] = Partition{Replicas: a, ISR: slices.Clone(a), Leader: a[0]}
	}
	return out
}

// createTopicRecord decides a new topic: name and config checks, then placement over the live
// brokers. id is the new topic's id (random, chosen by the caller).
func createTopicRecord(img *Image, name string, n int32, rf int16, configs map[string]string, id TopicID, validate func(map[string]string) error) (Record, error) {
	if err := checkNewTopic(img, name, n, configs, validate); err != nil {
		return Record{}, err
	}
	assign, err := placeReplicas(name, img.LiveBrokers(), 0, n, rf)
	if err != nil {
		return Record{}, err
	}
	return Record{Type: TypeCreateTopic, CreateTopic: &CreateTopicRecord{Name: name, ID: id, Configs: maps.Clone(configs), Partitions: newPartitions(assign)}}, nil
}

// createAssignedTopicRecord decides a new topic with a manual replica assignment (partition i
// on assignment[i]; see manualPartitions).
func createAssignedTopicRecord(img *Image, name string, assignment [][]int32, configs map[string]string, id TopicID, validate func(map[string]string) error) (Record, error) {
	if err := checkNewTopic(img, name, int32(len(assignment)), configs, validate); err != nil {
		return Record{}, err
	}
	if len(assignment) == 0 {
		return Record{}, errorf(kerr.InvalidReplicaAssignment, "the replica assignment has no partitions")
	}
	parts, err := manualPartitions(img, assignment, len(assignment[0]), 0)
	if err != nil {
		return Record{}, err
	}
	return Record{Type: TypeCreateTopic, CreateTopic: &CreateTopicRecord{Name: name, ID: id, Configs: maps.Clone(configs), Partitions: parts}}, nil
}

// checkNewTopic applies Kafka's checks to a topic about to be created with n partitions:
// a legal name that is new and does not collide with an existing one once '.' and '_' are
// identified (they collide in metric names), a partition count within MaxPartitions and valid
// configs.
func checkNewTopic(img *Image, name string, n int32, configs map[string]string, validate func(map[string]string) error) error {
	if err := validTopicName(name); err != nil {
		return err
	}
	if _, ok := img.Topics[name]; ok {
		return errorf(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	norm := strings.ReplaceAll(name, ".", "_")
	for _, other := range img.sortedTopicNames() {
		if strings.ReplaceAll(other, ".", "_") == norm {
			return errorf(kerr.InvalidTopicException, "topic %q collides with existing topic %q ('.' and '_' collide in metric names)", name, other)
		}
	}
	if n > MaxPartitions {
		return errorf(kerr.InvalidPartitions, "partition count %d is over the limit of %d", n, MaxPartitions)
	}
	return validateConfigs(configs, validate)
}

// manualPartitions builds partitions first.. from a manual replica assignment, as Kafka's
// controller checks one: every partition has rf replicas, no broker twice, only registered
// brokers, and at least one live replica. The ISR is the live replicas, the first of them
// leads.
func manualPartitions(img *Image, assignment [][]int32, rf int, first int) ([]Partition, error) {
	out := make([]Partition, len(assignment))
	for i, replicas := range assignment {
		p := first + i
		if len(replicas) == 0 || len(replicas) != rf {
			return nil, errorf(kerr.InvalidReplicaAssignment, "partition %d has %d replicas; every partition needs %d", p, len(replicas), rf)
		}
		var isr []int32
		for j, r := range replicas {
			if slices.Contains(replicas[:j], r) {
				return nil, errorf(kerr.InvalidReplicaAssignment, "partition %d names broker %d twice", p, r)
			}
			if img.Brokers[r] == nil {
				return nil, errorf(kerr.InvalidReplicaAssignment, "partition %d names broker %d, which is not registered", p, r)
			}
			if img.Live(r) {
				isr = append(isr, r)
			}
		}
		if len(isr) == 0 {
			return nil, errorf(kerr.InvalidReplicaAssignment, "all brokers of partition %d's assignment %v are fenced", p, replicas)
		}
		out[i] = Partition{Replicas: slices.Clone(replicas), ISR: isr, Leader: isr[0]}
	}
	return out, nil
}

// createPartitionsRecord decides growing topic name to total partitions, placing the new ones
// with the replication factor of partition 0 and continuing the leaders' round-robin, or on
// assignment (one entry per new partition, see manualPartitions) when it is not nil.
func createPartitionsRecord(img *Image, name string, total int32, assignment ...[]int32) (Record, error) {
	t := img.Topics[name]
	if t == nil {
		return Record{}, errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	have := int32(len(t.Partitions))
	if total <= have {
		return Record{}, errorf(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", name, have, total)
	}
	if total > MaxPartitions {
		return Record{}, errorf(kerr.InvalidPartitions, "partition count %d is over the limit of %d", total, MaxPartitions)
	}
	rf := int16(len(t.Partitions[0].Replicas))
	if assignment != nil {
		if int32(len(assignment)) != total-have {
			return Record{}, errorf(kerr.InvalidReplicaAssignment, "%d assignments for %d new partitions", len(assignment), total-have)
		}
		parts, err := manualPartitions(img, assignment, int(rf), int(have))
		if err != nil {
			return Record{}, err
		}
		return Record{Type: TypeCreatePartitions, CreatePartitions: &CreatePartitionsRecord{Name: name, ID: t.ID, Partitions: parts}}, nil
	}
	assign, err := placeReplicas(name, img.LiveBrokers(), have, total-have, rf)
	if err != nil {
		return Record{}, err
	}
	return Record{Type: TypeCreatePartitions, CreatePartitions: &CreatePartitionsRecord{Name: name, ID: t.ID, Partitions: newPartitions(assign)}}, nil
}

// alterConfigsRecord decides setting and deleting topic config overrides (Kafka's
// IncrementalAlterConfigs SET and DELETE).
func alterConfigsRecord(img *Image, name string, set map[string]string, del []string, validate func(map[string]string) error) (Record, error) {
	t := img.Topics[name]
	if t == nil {
		return Record{}, errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	configs := maps.Clone(t.Configs)
	if configs == nil {
		configs = map[string]string{}
	}
	for _, k := range del {
		delete(configs, k)
	}
	maps.Copy(configs, set)
	if err := validateConfigs(configs, validate); err != nil {
		return Record{}, err
	}
	return Record{Type: TypeAlterConfigs, AlterConfigs: &AlterConfigsRecord{Name: name, ID: t.ID, Configs: configs}}, nil
}

// deleteTopicRecord decides deleting topic name.
func deleteTopicRecord(img *Image, name string) (Record, error) {
	t := img.Topics[name]
	if t == nil {
		return Record{}, errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	return Record{Type: TypeDeleteTopic, DeleteTopic: &DeleteTopicRecord{Name: name, ID: t.ID}}, nil
}
