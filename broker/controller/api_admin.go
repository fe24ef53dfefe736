package controller

import (
	"maps"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// PartitionResult is the outcome of an admin request for one partition; Err is nil on
// success and carries a Kafka code otherwise (see ErrorCode).
type PartitionResult struct {
	Topic     string
	Partition int32
	Err       error
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// decideEach decides the partitions of one admin request in turn, each over the image the
// records decided before it leave (so a partition named twice sees its own first change),
// and proposes every record as one entry, as KRaft commits an admin request atomically.
// decide returns one partition's record (nil: nothing to change) or its error.
func (c *Controller) decideEach(parts func(img *Image) []TopicPartition, decide func(img *Image, tp TopicPartition) (*Record, error)) ([]PartitionResult, error) {
	var out []PartitionResult
	_, err := c.decide(func(img *Image) ([]Record, error) {
		out = out[:0]
		scratch := img
		var recs []Record
		for _, tp := range parts(img) {
			r, err := decide(scratch, tp)
			if err == nil && r != nil {
				next, aerr := applyRecords(scratch, scratch.Index, []Record{*r})
				if aerr != nil {
					err = errorf(kerr.UnknownServerError, "%v", aerr)
				} else {
					scratch = next
					recs = append(recs, *r)
				}
			}
			out = append(out, PartitionResult{Topic: tp.Topic, Partition: tp.Partition, Err: err})
		}
		return recs, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ElectLeaders runs a preferred (unclean false) or unclean leader election (KIP-460) for the
// partitions named, or with parts nil for every partition, leaving out those that need no
// election (see electionRecord for the rules and errors). Errors: NOT_CONTROLLER.
func (c *Controller) ElectLeaders(unclean bool, parts []TopicPartition) ([]PartitionResult, error) {
	all := parts == nil
	list := func(img *Image) []TopicPartition {
		if !all {
			return parts
		}
		var out []TopicPartition
		for _, name := range img.sortedTopicNames() {
			for i := range img.Topics[name].Partitions {
				out = append(out, TopicPartition{name, int32(i)})
			}
		}
		return out
	}
	res, err := c.decideEach(list, func(img *Image, tp TopicPartition) (*Record, error) {
		return electionRecord(img, tp.Topic, tp.Partition, unclean)
	})
	if err != nil || !all {
		return res, err
	}
	kept := res[:0]
	for _, r := range res {
		if ErrorCode(r.Err) != kerr.ElectionNotNeeded.Code {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// ReassignRequest is one partition of an AlterPartitionReassignments request: Replicas is
// the target replica list, nil to cancel the reassignment in flight.
type ReassignRequest struct {
	Topic     string
	Partition int32
	Replicas  []int32
}

// AlterPartitionReassignments starts, replaces or cancels the reassignment of each partition
// (KIP-455; see reassign.go for the stages and reassignRecord for the errors), committing
// every accepted partition together. allowRFChange false refuses targets that change a
// partition's replication factor (KIP-860). Errors: NOT_CONTROLLER.
func (c *Controller) AlterPartitionReassignments(reqs []ReassignRequest, allowRFChange bool) ([]PartitionResult, error) {
	byPart := map[TopicPartition][][]int32{}
	parts := make([]TopicPartition, len(reqs))
	for i, r := range reqs {
		parts[i] = TopicPartition{r.Topic, r.Partition}
		byPart[parts[i]] = append(byPart[parts[i]], r.Replicas)
	}
	seen := map[TopicPartition]int{}
	return c.decideEach(func(*Image) []TopicPartition { return parts }, func(img *Image, tp TopicPartition) (*Record, error) {
		target := byPart[tp][seen[tp]]
		seen[tp]++
		return reassignRecord(img, c.pol, tp.Topic, tp.Partition, target, allowRFChange)
	})
}

// AlterBrokerConfigs sets and deletes dynamic broker configs (KIP-226) of resource name: ""
// for the cluster-wide defaults, a broker id for that broker's own. Deletes apply first; the
// resulting configs are checked with Config.ValidateBrokerConfigs. It returns the resource's
// configs afterwards (as they would be, with validateOnly). Enabling
// unclean.leader.election.enable elects leaders for offline partitions at once. Errors:
// INVALID_REQUEST (a bad resource name or config, as Kafka answers dynamic broker config
// validation failures), NOT_CONTROLLER.
func (c *Controller) AlterBrokerConfigs(name string, set map[string]string, del []string, validateOnly bool) (map[string]string, error) {
	var configs map[string]string
	_, err := c.decide(func(img *Image) ([]Record, error) {
		if err := validBrokerResource(name); err != nil {
			return nil, errorf(kerr.InvalidRequest, "%v", err)
		}
		configs = maps.Clone(img.BrokerConfigs[name])
		if configs == nil {
			configs = map[string]string{}
		}
		for _, k := range del {
			delete(configs, k)
		}
		maps.Copy(configs, set)
		if v, ok := configs[UncleanLeaderElectionConfig]; ok {
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, errorf(kerr.InvalidRequest, "%s=%q: want true or false", UncleanLeaderElectionConfig, v)
			}
		}
		if validate := c.cfg.ValidateBrokerConfigs; validate != nil {
			if err := validate(configs); err != nil {
				return nil, errorf(kerr.InvalidRequest, "%v", err)
			}
		}
		if validateOnly {
			return nil, nil
		}
		return withRecords(img, c.pol, Record{Type: TypeBrokerConfigs, BrokerConfigs: &BrokerConfigsRecord{Name: name, Configs: configs}})
	})
	if err != nil {
		return nil, err
	}
	return configs, nil
}
