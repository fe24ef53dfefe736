package controller

import (
	"maps"
	"slices"
	"strconv"

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
	if err := validTopicName(name); err != nil {
		return Record{}, err
	}
	if _, ok := img.Topics[name]; ok {
		return Record{}, errorf(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	if n > MaxPartitions {
		return Record{}, errorf(kerr.InvalidPartitions, "partition count %d is over the limit of %d", n, MaxPartitions)
	}
	if err := validateConfigs(configs, validate); err != nil {
		return Record{}, err
	}
	assign, err := placeReplicas(name, img.LiveBrokers(), 0, n, rf)
	if err != nil {
		return Record{}, err
	}
	return Record{Type: TypeCreateTopic, CreateTopic: &CreateTopicRecord{Name: name, ID: id, Configs: maps.Clone(configs), Partitions: newPartitions(assign)}}, nil
}

// createPartitionsRecord decides growing topic name to total partitions, placing the new ones
// with the replication factor of partition 0 and continuing the leaders' round-robin.
func createPartitionsRecord(img *Image, name string, total int32) (Record, error) {
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
