package broker

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchaos/kchaos/broker/storage"
)

// topic is a topic with at least one partition hosted by this broker, as the metadata image
// has it (applyImage). name and id never change; configs and partitions change only under
// Broker.mu (write).
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

// partitionFor looks up a partition by topic name and index.
func (b *Broker) partitionFor(topicName string, index int32) (*partition, *kerr.Error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topics[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		return nil, b.cl.hostedError(topicName, index)
	}
	return t.partitions[index], nil
}

// partitionByID looks up a partition by topic id and index.
func (b *Broker) partitionByID(id [16]byte, index int32) (*partition, *kerr.Error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topicsByID[id]
	if t == nil {
		if b.cl.ctl.Image().TopicByID(id) != nil {
			return nil, kerr.NotLeaderForPartition
		}
		return nil, kerr.UnknownTopicID
	}
	if index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		return nil, b.cl.hostedError(t.name, index)
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
	l, err := storage.Open(dir, t.props(b).storageConfig(), storage.Options{FS: b.fs, Now: b.now, Logger: b.log.With("topic", t.name, "partition", i),
		ProducerIDExpiration: time.Duration(b.cfg.propInt("producer.id.expiration.ms")) * time.Millisecond, TrustReads: b.cfg.bug(bugServeCorrupt)})
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

// hostedError is the error for a partition this broker does not host: NOT_LEADER_OR_FOLLOWER
// when it exists in the cluster, UNKNOWN_TOPIC_OR_PARTITION otherwise.
func (cl *cluster) hostedError(topicName string, index int32) *kerr.Error {
	if cl.ctl.Image().Partition(topicName, index) != nil {
		return kerr.NotLeaderForPartition
	}
	return kerr.UnknownTopicOrPartition
}
