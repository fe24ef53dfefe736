package controller

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Image returns the latest metadata image this node applied. It is immutable.
func (c *Controller) Image() *Image {
	img, _ := c.fsm.image()
	return img
}

// Watch returns the latest image and a channel closed as soon as a newer one is published.
func (c *Controller) Watch() (*Image, <-chan struct{}) { return c.fsm.image() }

// WaitFor returns the first image (the current one or a later one) for which ok is true, or
// ctx's error.
func (c *Controller) WaitFor(ctx context.Context, ok func(*Image) bool) (*Image, error) {
	for {
		img, changed := c.fsm.image()
		if ok(img) {
			return img, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return img, fmt.Errorf("controller: wait for image: %w", ctx.Err())
		}
	}
}

// Stats returns the cluster's election and ISR counters from the latest image.
func (c *Controller) Stats() Stats { return c.Image().Stats }

// Registration is what a broker sends to register (Kafka's BrokerRegistration).
type Registration struct {
	// ID is the broker's node.id.
	ID int32
	// Host and Port are its Kafka listener.
	Host string
	Port int32
	// Rack is broker.rack, empty when unset.
	Rack string
	// RaftAddr, when set for a node that is not a voter, makes the active controller add it
	// to the quorum as an observer (Raft non-voter).
	RaftAddr string
	// Listeners are its other client listeners, by name.
	Listeners []Endpoint
}

// RegisterBroker registers (or re-registers) a broker and returns its new broker epoch. The
// broker starts fenced; its first Heartbeat unfences it. Re-registering a live broker first
// fences its previous incarnation, moving its leaderships away.
func (c *Controller) RegisterBroker(reg Registration) (int64, error) {
	if reg.ID < 0 || reg.Host == "" || reg.Port <= 0 {
		return 0, errorf(kerr.InvalidRequest, "registration needs an id >= 0, a host and a port (got %d %q %d)", reg.ID, reg.Host, reg.Port)
	}
	now := c.cfg.Now()
	img, err := c.decide(func(img *Image) ([]Record, error) {
		return registerRecords(img, c.pol, RegisterBrokerRecord{ID: reg.ID, Host: reg.Host, Port: reg.Port, Rack: reg.Rack, Time: now, Listeners: reg.Listeners})
	})
	if err != nil {
		return 0, err
	}
	c.hbMu.Lock()
	c.lastHeartbeat[reg.ID] = c.cfg.Now()
	c.hbMu.Unlock()
	if _, voter := c.cfg.Voters[reg.ID]; reg.RaftAddr != "" && !voter {
		if err := c.AddObserver(reg.ID, reg.RaftAddr); err != nil {
			c.log.Warn("add registering broker as observer", "broker", reg.ID, "err", err)
		}
	}
	return img.Brokers[reg.ID].Epoch, nil
}

// Heartbeat records a broker's heartbeat (Kafka's BrokerHeartbeat) and reports whether it is
// fenced afterwards. A fenced broker's heartbeat unfences it and makes it leader of offline
// partitions it can lead. Errors: BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH (the broker
// must register again), NOT_CONTROLLER.
func (c *Controller) Heartbeat(id int32, epoch int64) (fenced bool, err error) {
	if !c.active.Load() {
		return false, c.notController()
	}
	check := func(img *Image) error {
		b := img.Brokers[id]
		if b == nil {
			return errorf(kerr.BrokerIDNotRegistered, "broker %d is not registered", id)
		}
		if b.Epoch != epoch {
			return errorf(kerr.StaleBrokerEpoch, "broker %d epoch %d is not its current epoch %d", id, epoch, b.Epoch)
		}
		return nil
	}
	img := c.Image()
	if err := check(img); err != nil {
		return false, err
	}
	c.hbMu.Lock()
	c.lastHeartbeat[id] = c.cfg.Now()
	c.hbMu.Unlock()
	if !img.Brokers[id].Fenced {
		return false, nil
	}
	now := c.cfg.Now()
	img, err = c.decide(func(img *Image) ([]Record, error) {
		if err := check(img); err != nil {
			return nil, err
		}
		return unfenceRecords(img, c.pol, id, epoch, now)
	})
	if err != nil {
		return true, err
	}
	return img.Brokers[id].Fenced, nil
}

// FenceBroker fences a broker now (a controlled shutdown, or a test), moving its leaderships
// and ISR memberships as if its session had expired. Its next heartbeat unfences it.
func (c *Controller) FenceBroker(id int32) error {
	_, err := c.decide(func(img *Image) ([]Record, error) {
		if img.Brokers[id] == nil {
			return nil, errorf(kerr.BrokerIDNotRegistered, "broker %d is not registered", id)
		}
		return fenceRecords(img, c.pol, id)
	})
	return err
}

// CreateTopic creates topic name with partitions partitions (-1 or 0: DefaultPartitions) of
// replicationFactor replicas (-1 or 0: DefaultReplicationFactor) placed on live brokers (see
// placeReplicas), with configs as overrides. validateOnly checks everything and returns the
// topic that would be created, without creating it. Errors: INVALID_TOPIC_EXCEPTION,
// TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_CONFIG,
// NOT_CONTROLLER.
func (c *Controller) CreateTopic(name string, partitions int32, replicationFactor int16, configs map[string]string, validateOnly bool) (*Topic, error) {
	if partitions == 0 || partitions == -1 {
		partitions = c.cfg.DefaultPartitions
	}
	if replicationFactor == 0 || replicationFactor == -1 {
		replicationFactor = c.cfg.DefaultReplicationFactor
	}
	var id TopicID
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("controller: topic id: %w", err)
	}
	return c.changeTopic(name, validateOnly, func(img *Image) (Record, error) {
		return createTopicRecord(img, name, partitions, replicationFactor, configs, id, c.cfg.ValidateTopicConfigs)
	})
}

// CreateTopicAssigned creates topic name with a manual replica assignment, partition i on
// assignment[i] (Kafka's CreateTopics ReplicaAssignment): every partition with the same number
// of replicas, no broker twice, only registered brokers, at least one of them live (the ISR
// is the live ones, the first leads). Errors as CreateTopic, and INVALID_REPLICA_ASSIGNMENT.
func (c *Controller) CreateTopicAssigned(name string, assignment [][]int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	var id TopicID
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("controller: topic id: %w", err)
	}
	return c.changeTopic(name, validateOnly, func(img *Image) (Record, error) {
		return createAssignedTopicRecord(img, name, assignment, configs, id, c.cfg.ValidateTopicConfigs)
	})
}

// changeTopic commits the record that decide builds for topic name and returns the topic as
// it is afterwards; with validateOnly it commits nothing and returns the topic as the record
// would leave it.
func (c *Controller) changeTopic(name string, validateOnly bool, decide func(*Image) (Record, error)) (*Topic, error) {
	var rec Record
	img, err := c.decide(func(img *Image) ([]Record, error) {
		var err error
		rec, err = decide(img)
		if err != nil || validateOnly {
			return nil, err
		}
		return []Record{rec}, nil
	})
	if err != nil {
		return nil, err
	}
	if validateOnly {
		scratch, err := applyRecords(img, img.Index, []Record{rec})
		if err != nil {
			return nil, err
		}
		return scratch.Topics[name], nil
	}
	return img.Topics[name], nil
}

// DeleteTopic deletes topic name. Errors: UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER.
func (c *Controller) DeleteTopic(name string) error {
	_, err := c.decide(func(img *Image) ([]Record, error) {
		r, err := deleteTopicRecord(img, name)
		return []Record{r}, err
	})
	return err
}

// CreatePartitions grows topic name to total partitions, placing the new ones like
// CreateTopic, or on assignment (one replica list per new partition, checked as in
// CreateTopicAssigned) when it is not nil. Errors: UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR (too few live brokers),
// INVALID_REPLICA_ASSIGNMENT, NOT_CONTROLLER.
func (c *Controller) CreatePartitions(name string, total int32, validateOnly bool, assignment ...[]int32) (*Topic, error) {
	return c.changeTopic(name, validateOnly, func(img *Image) (Record, error) {
		return createPartitionsRecord(img, name, total, assignment...)
	})
}

// AlterConfigs sets and deletes config overrides of topic name (IncrementalAlterConfigs SET
// and DELETE; deletes apply first). Errors: UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG,
// NOT_CONTROLLER.
func (c *Controller) AlterConfigs(name string, set map[string]string, del []string, validateOnly bool) (*Topic, error) {
	var rec Record
	img, err := c.decide(func(img *Image) ([]Record, error) {
		var err error
		rec, err = alterConfigsRecord(img, name, set, del, c.cfg.ValidateTopicConfigs)
		if err != nil || validateOnly {
			return nil, err
		}
		// Enabling unclean election elects a leader for offline partitions at once, as Kafka does.
		return withRecords(img, c.pol, rec)
	})
	if err != nil {
		return nil, err
	}
	if validateOnly {
		scratch, err := applyRecords(img, img.Index, []Record{rec})
		if err != nil {
			return nil, err
		}
		return scratch.Topics[name], nil
	}
	return img.Topics[name], nil
}

// AlterPartition applies a partition leader's ISR change (see AlterPartitionRequest and
// alterPartitionRecord for the checks and errors) and returns the partition's new state: the
// proposed ISR with the partition epoch bumped and the leader epoch unchanged.
func (c *Controller) AlterPartition(req AlterPartitionRequest) (Partition, error) {
	var out *Partition
	_, err := c.decide(func(img *Image) ([]Record, error) {
		r, np, err := alterPartitionRecord(img, req)
		if err != nil {
			return nil, err
		}
		out = np
		if r == nil {
			return nil, nil
		}
		return []Record{*r}, nil
	})
	if err != nil {
		return Partition{}, err
	}
	return *out.clone(), nil
}
