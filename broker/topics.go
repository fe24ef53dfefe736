package broker

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchaos/kchaos/broker/storage"
)

// topic is a topic hosted by the broker. name and id never change; configs and partitions
// change only under Broker.mu (write).
type topic struct {
	name       string
	id         [16]byte
	configs    map[string]string // overrides only
	partitions []*partition
}

// props returns the topic's effective configs. Broker.mu must be held (read).
func (t *topic) props(b *Broker) topicProps {
	return topicProps{broker: &b.cfg, overrides: t.configs}
}

// metaFile is the single-node broker's durable record of its topics, in DataDir. The
// replicated cluster keeps the same facts in its Raft log instead.
const metaFile = "kchaos-topics.json"

type persistedTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// saveTopics writes the topic list atomically. Broker.mu must be held.
func (b *Broker) saveTopics() error {
	list := make([]persistedTopic, 0, len(b.topics))
	for _, name := range sortedKeys(b.topics) {
		t := b.topics[name]
		list = append(list, persistedTopic{Name: t.name, ID: hex.EncodeToString(t.id[:]), Partitions: int32(len(t.partitions)), Configs: t.configs})
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(b.cfg.DataDir, metaFile)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("broker: save topics: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("broker: save topics: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("broker: save topics: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("broker: save topics: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("broker: save topics: %w", err)
	}
	return syncDir(b.cfg.DataDir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadTopics opens every topic recorded in DataDir, recovering each partition's log.
func (b *Broker) loadTopics() error {
	data, err := os.ReadFile(filepath.Join(b.cfg.DataDir, metaFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("broker: load topics: %w", err)
	}
	var list []persistedTopic
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("broker: load topics from %s: %w", metaFile, err)
	}
	for _, pt := range list {
		var id [16]byte
		raw, err := hex.DecodeString(pt.ID)
		if err != nil || len(raw) != 16 {
			return fmt.Errorf("broker: load topics: topic %s has a bad id %q", pt.Name, pt.ID)
		}
		copy(id[:], raw)
		t := &topic{name: pt.Name, id: id, configs: pt.Configs}
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		if err := b.addPartitions(t, pt.Partitions); err != nil {
			return err
		}
		b.topics[t.name] = t
		b.topicsByID[t.id] = t
	}
	return nil
}

// addPartitions opens partitions len(t.partitions)..n-1 of t. Broker.mu must be held.
func (b *Broker) addPartitions(t *topic, n int32) error {
	for i := int32(len(t.partitions)); i < n; i++ {
		l, dir, err := b.openLog(t, i)
		if err != nil {
			return err
		}
		p := &partition{topic: t, index: i, log: l, dataDir: dir, leader: b.cfg.NodeID, replicas: []int32{b.cfg.NodeID}, isr: []int32{b.cfg.NodeID}}
		if e, ok := l.LatestEpoch(); ok {
			p.leaderEpoch = e
		}
		// A single node is its own ISR: everything in its log is committed.
		p.highWatermark.Store(l.LogEndOffset())
		t.partitions = append(t.partitions, p)
	}
	return nil
}

// validTopicName applies Kafka's rules: 1..249 characters of [a-zA-Z0-9._-], not "." or "..".
func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("topic name %q is illegal", name)
	}
	if len(name) > 249 {
		return fmt.Errorf("topic name is longer than 249 characters")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q contains %q; legal characters are ASCII alphanumerics, '.', '_' and '-'", name, c)
		}
	}
	return nil
}

// createTopicError is a Kafka error code with a message for CreateTopics and friends.
type createTopicError struct {
	err *kerr.Error
	msg string
}

func (e *createTopicError) Error() string { return e.err.Message + ": " + e.msg }

func topicErr(err *kerr.Error, format string, args ...any) *createTopicError {
	return &createTopicError{err: err, msg: fmt.Sprintf(format, args...)}
}

// createTopic creates a topic with n partitions (n <= 0: num.partitions) and replication
// factor rf (rf <= 0: default.replication.factor); validateOnly checks without creating.
func (b *Broker) createTopic(name string, n int32, rf int16, configs map[string]string, validateOnly bool) (*topic, *createTopicError) {
	if err := validTopicName(name); err != nil {
		return nil, topicErr(kerr.InvalidTopicException, "%v", err)
	}
	if n <= 0 {
		if n != -1 && n != 0 {
			return nil, topicErr(kerr.InvalidPartitions, "partition count %d must be positive", n)
		}
		n = int32(b.cfg.propInt("num.partitions"))
	}
	if rf <= 0 {
		if rf != -1 && rf != 0 {
			return nil, topicErr(kerr.InvalidReplicationFactor, "replication factor %d must be positive", rf)
		}
		rf = int16(b.cfg.propInt("default.replication.factor"))
	}
	if rf != 1 {
		return nil, topicErr(kerr.InvalidReplicationFactor, "replication factor %d is larger than the 1 available broker", rf)
	}
	if n > 100000 {
		return nil, topicErr(kerr.InvalidPartitions, "partition count %d is over the limit of 100000", n)
	}
	if err := validateTopicConfigs(configs); err != nil {
		return nil, topicErr(kerr.InvalidConfig, "%v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[name]; ok {
		return nil, topicErr(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	if clash := b.collidingTopic(name); clash != "" {
		return nil, topicErr(kerr.InvalidTopicException, "topic %q collides with existing topic %q ('.' and '_' collide in metric names)", name, clash)
	}
	t := &topic{name: name, configs: maps.Clone(configs)}
	if t.configs == nil {
		t.configs = map[string]string{}
	}
	if validateOnly {
		t.partitions = make([]*partition, n)
		return t, nil
	}
	if _, err := rand.Read(t.id[:]); err != nil {
		return nil, topicErr(kerr.UnknownServerError, "topic id: %v", err)
	}
	if err := b.addPartitions(t, n); err != nil {
		for _, p := range t.partitions {
			p.log.Delete()
		}
		return nil, topicErr(kerr.KafkaStorageError, "%v", err)
	}
	b.topics[name] = t
	b.topicsByID[t.id] = t
	if err := b.saveTopics(); err != nil {
		b.log.Error("persist topics", "err", err)
	}
	b.metrics.partitions.Add(float64(n))
	b.log.Info("created topic", "topic", name, "partitions", n)
	return t, nil
}

// collidingTopic returns an existing topic whose name equals name once '.' and '_' are
// identified, as Kafka refuses those. Broker.mu must be held.
func (b *Broker) collidingTopic(name string) string {
	norm := strings.ReplaceAll(name, ".", "_")
	for other := range b.topics {
		if other != name && strings.ReplaceAll(other, ".", "_") == norm {
			return other
		}
	}
	return ""
}

// deleteTopic removes a topic and its data.
func (b *Broker) deleteTopic(t *topic) error {
	b.mu.Lock()
	delete(b.topics, t.name)
	delete(b.topicsByID, t.id)
	err := b.saveTopics()
	b.mu.Unlock()
	for _, p := range t.partitions {
		if derr := p.log.Delete(); derr != nil && err == nil {
			err = derr
		}
	}
	b.metrics.partitions.Sub(float64(len(t.partitions)))
	b.log.Info("deleted topic", "topic", t.name)
	return err
}

// topicByName returns the topic, auto-creating it when allowed.
func (b *Broker) topicByName(name string, autoCreate bool) (*topic, *createTopicError) {
	b.mu.RLock()
	t := b.topics[name]
	b.mu.RUnlock()
	if t != nil {
		return t, nil
	}
	if !autoCreate || !b.cfg.propBool("auto.create.topics.enable") {
		return nil, topicErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	t, err := b.createTopic(name, -1, -1, nil, false)
	if err != nil && err.err == kerr.TopicAlreadyExists {
		b.mu.RLock()
		t = b.topics[name]
		b.mu.RUnlock()
		return t, nil
	}
	return t, err
}

// partitionFor looks up a partition by topic name and index.
func (b *Broker) partitionFor(topicName string, index int32) (*partition, *kerr.Error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topics[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		if b.cl != nil {
			return nil, b.cl.hostedError(topicName, index)
		}
		return nil, kerr.UnknownTopicOrPartition
	}
	return t.partitions[index], nil
}

// partitionByID looks up a partition by topic id and index.
func (b *Broker) partitionByID(id [16]byte, index int32) (*partition, *kerr.Error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topicsByID[id]
	if t == nil {
		if b.cl != nil && b.cl.ctl.Image().TopicByID(id) != nil {
			return nil, kerr.NotLeaderForPartition
		}
		return nil, kerr.UnknownTopicID
	}
	if index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		if b.cl != nil {
			return nil, b.cl.hostedError(t.name, index)
		}
		return nil, kerr.UnknownTopicOrPartition
	}
	return t.partitions[index], nil
}

// leaderOf returns p when this broker leads it, else NOT_LEADER_OR_FOLLOWER (clients with stale
// metadata refresh it on that error).
func (b *Broker) leaderOf(p *partition, err *kerr.Error) (*partition, *kerr.Error) {
	if err != nil {
		return nil, err
	}
	if !p.isLeader(b.cfg.NodeID) {
		return nil, kerr.NotLeaderForPartition
	}
	return p, nil
}

// openLog opens (recovering) the log of partition i of t in DataDir/TOPIC-i and returns it
// with its directory. With the lose-last-batch bug switch on, the log's last 10 records are
// dropped.
func (b *Broker) openLog(t *topic, i int32) (*storage.Log, string, error) {
	dir := filepath.Join(b.cfg.DataDir, t.name+"-"+strconv.Itoa(int(i)))
	l, err := storage.Open(dir, t.props(b).storageConfig(), storage.Options{FS: b.fs, Logger: b.log.With("topic", t.name, "partition", i),
		ProducerIDExpiration: time.Duration(b.cfg.propInt("producer.id.expiration.ms")) * time.Millisecond})
	if err != nil {
		return nil, "", fmt.Errorf("broker: open %s-%d: %w", t.name, i, err)
	}
	if b.cfg.bug(bugLoseLastBatch) && l.LogEndOffset() > l.LogStartOffset() {
		// The last 10 records, not one: the very last batch may be one the broker never
		// acknowledged (a restart closed the connection first), which the producer resends.
		if err := l.TruncateTo(max(l.LogEndOffset()-10, l.LogStartOffset())); err != nil {
			l.Close()
			return nil, "", fmt.Errorf("broker: open %s-%d: %w", t.name, i, err)
		}
	}
	return l, dir, nil
}
