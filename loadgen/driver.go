// Package loadgen turns a workloads.RunConfig into producers and consumers against any
// Kafka-protocol cluster and records what they do: every operation goes to a history
// (package history), latencies go to HDR histograms, throughput, errors and lag go to
// per-second series. Producers are paced open-loop (Pacer) and latency is measured from the
// intended send time. Four client libraries sit behind the Driver interface: franz-go,
// IBM/sarama, segmentio/kafka-go and confluent-kafka-go (librdkafka, cgo). All but kafka-go
// send idempotently and in transactions and run Kafka's consume-transform-produce pattern
// (consumer mode transform) behind TransformDriver; kafka-go has neither.
package loadgen

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/workloads"
)

// Driver is a Kafka client library behind the few operations the load generator needs.
type Driver interface {
	// CreateTopics creates topics with the given partitions, replication factor and configs.
	// A topic that already exists is an error: runs use fresh topics.
	CreateTopics(ctx context.Context, topics []string, partitions int32, replicationFactor int16, configs map[string]string) error
	// DeleteTopics deletes topics and waits until the cluster has accepted the deletion.
	DeleteTopics(ctx context.Context, topics []string) error
	// EndOffsets returns each partition's end offset (ListOffsets latest; the high
	// watermark, or the last stable offset for read_committed).
	EndOffsets(ctx context.Context, topic string, readCommitted bool) (map[int32]int64, error)
	// NewProducer returns a producer configured from p.
	NewProducer(p ProducerSettings) (Producer, error)
	// NewConsumer returns a consumer configured from c.
	NewConsumer(c ConsumerSettings) (Consumer, error)
	// Close releases the driver's admin connections.
	Close() error
}

// Outcome receives a sent record's outcome.
type Outcome interface {
	// Done is called exactly once, from a client goroutine, with the partition and offset
	// (acks=0: offset -1) or the error.
	Done(partition int32, offset int64, err error)
}

// OutcomeFunc is a function that receives an outcome.
type OutcomeFunc func(partition int32, offset int64, err error)

// Done calls f.
func (f OutcomeFunc) Done(partition int32, offset int64, err error) { f(partition, offset, err) }

// Producer sends records asynchronously.
type Producer interface {
	// Send hands m to the client. It blocks while the client's buffer is full. done receives
	// the outcome. An Outcome that is a pointer costs no allocation per record, a closure
	// (OutcomeFunc) costs one. The client only reads m's key and value: the load generator
	// reuses them for later records once done has been called.
	Send(ctx context.Context, m *Message, done Outcome)
	// Flush waits until every sent record has an outcome or ctx ends.
	Flush(ctx context.Context) error
	// Close flushes nothing: records still buffered fail with an error.
	Close()
}

// Message is one record to send.
type Message struct {
	Topic string
	Key   []byte
	Value []byte
	// Timestamp is the record's create time; zero: the client stamps it when sent.
	Timestamp time.Time
}

// Consumer reads one topic, through a group or from assigned partitions.
type Consumer interface {
	// Poll returns records fetched since the last poll, waiting up to about wait when there
	// are none. It also reports the consumer's assignment when it changed.
	Poll(ctx context.Context, wait time.Duration) (Polled, error)
	// Commit commits next offsets to read (Kafka's convention) for the settings' topic.
	Commit(ctx context.Context, offsets map[int32]int64) error
	// Close leaves the group (committing first when auto-commit is on) and closes the client.
	Close()
}

// Polled is the result of one poll.
type Polled struct {
	Records []Fetched
	// Assignment is the consumer's full set of partitions when AssignmentChanged.
	Assignment        []int32
	AssignmentChanged bool
	// Generation and Member are the group generation and member id the assignment came
	// with, when AssignmentChanged in a group; Generation is -1 (or 0) when the driver does
	// not know it.
	Generation int32
	Member     string
	// Errors are fetch errors by Kafka error name.
	Errors []string
}

// Fetched is one record a consumer read.
type Fetched struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

// ProducerSettings configure a producer client.
type ProducerSettings struct {
	Bootstrap []string
	// Client says how to connect (TLS, SASL); nil is plaintext.
	Client *clientconfig.Config
	// ClientID names the client in broker logs.
	ClientID string
	// TransactionalID is the producer's transactional.id when ProducerConfig.Transactional.
	TransactionalID string
	workloads.ProducerConfig
}

// TxnProducer is a Producer that can send in transactions.
type TxnProducer interface {
	Producer
	// BeginTxn starts a transaction.
	BeginTxn() error
	// EndTxn waits for every record sent in the transaction to have an outcome, then commits
	// or aborts it.
	EndTxn(ctx context.Context, commit bool) error
}

// ConsumerSettings configure a consumer client.
type ConsumerSettings struct {
	Bootstrap []string
	// Client says how to connect (TLS, SASL); nil is plaintext.
	Client   *clientconfig.Config
	ClientID string
	Topic    string
	// Group is the consumer group id. In assign mode it is used only to commit and to find
	// the starting offsets; empty means no commits and reading from the start.
	Group string
	// Partitions, when not nil, are assigned directly instead of subscribing.
	Partitions []int32
	// FromStart reads assigned partitions from offset 0 regardless of commits (the drain).
	FromStart bool
	// AutoCommit commits polled positions every AutoCommitInterval.
	AutoCommit         bool
	AutoCommitInterval time.Duration
	ReadCommitted      bool
	// InstanceID is the static group member id (group.instance.id); empty for dynamic.
	InstanceID      string
	SessionTimeout  time.Duration
	MaxPollInterval time.Duration
	// HeartbeatInterval, FetchMinBytes, FetchMaxBytes, MaxPartitionFetchBytes and
	// MaxPollRecords are Kafka's heartbeat.interval.ms, fetch.min.bytes, fetch.max.bytes,
	// max.partition.fetch.bytes and max.poll.records; 0 leaves the driver's default.
	HeartbeatInterval      time.Duration
	FetchMinBytes          int32
	FetchMaxBytes          int32
	MaxPartitionFetchBytes int32
	MaxPollRecords         int
	// FetchMaxWait is fetch.max.wait.ms; default 100ms.
	FetchMaxWait time.Duration
}

// fetchSettings copies the consumer fetch settings of a workload into s.
func (s *ConsumerSettings) fetchSettings(c workloads.ConsumerConfig) {
	s.HeartbeatInterval, s.FetchMaxWait = time.Duration(c.HeartbeatInterval), time.Duration(c.FetchMaxWait)
	s.FetchMinBytes, s.FetchMaxBytes = int32(c.FetchMinBytes), int32(c.FetchMaxBytes)
	s.MaxPartitionFetchBytes, s.MaxPollRecords = int32(c.MaxPartitionFetchBytes), c.MaxPollRecords
}

// NewDriver returns the driver named by a workload ("franz-go", "sarama", "kafka-go" or
// "confluent"), whose admin client connects as client says (nil: plaintext). The confluent
// driver needs cgo: in a build without it, asking for it is an error that says so.
func NewDriver(name string, bootstrap []string, client *clientconfig.Config) (Driver, error) {
	switch name {
	case "franz-go", "":
		return newFranzDriver(bootstrap, client)
	case "sarama":
		return newSaramaDriver(bootstrap, client)
	case "kafka-go":
		return newKafkaGoDriver(bootstrap, client)
	case "confluent":
		return newConfluentDriver(bootstrap, client)
	}
	return nil, fmt.Errorf("loadgen: unknown driver %q; allowed: %s", name, strings.Join(DriverNames, ", "))
}

// DriverNames are the drivers NewDriver knows, in the order reports list them.
var DriverNames = []string{"sarama", "franz-go", "kafka-go", "confluent"}

// driverMissing holds, for a driver this binary was built without (confluent without cgo),
// the error NewDriver returns for it; set by the drivers' files.
var driverMissing = map[string]error{}

// AvailableDrivers are the drivers of DriverNames this binary was built with.
func AvailableDrivers() []string {
	var out []string
	for _, d := range DriverNames {
		if driverMissing[d] == nil {
			out = append(out, d)
		}
	}
	return out
}

// driverModules maps each driver to the Go module of its client library.
var driverModules = map[string]string{
	"franz-go":  "github.com/twmb/franz-go",
	"sarama":    "github.com/IBM/sarama",
	"kafka-go":  "github.com/segmentio/kafka-go",
	"confluent": "github.com/confluentinc/confluent-kafka-go/v2",
}

// driverVersionNotes adds to a driver's version what the build info does not say (the
// confluent driver: the bundled librdkafka's version); set by the drivers' files.
var driverVersionNotes = map[string]string{}

// DriverLibrary returns the Go module of a driver's client library and its version as this
// binary was built with it (debug.ReadBuildInfo), e.g. "github.com/segmentio/kafka-go",
// "v0.4.51"; the version is "unknown" without build info and empty for an unknown driver.
func DriverLibrary(driver string) (module, version string) {
	if driver == "" {
		driver = "franz-go"
	}
	module = driverModules[driver]
	if module == "" {
		return "", ""
	}
	version = "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == module {
				version = d.Version
				if d.Replace != nil {
					version = d.Replace.Version
				}
			}
		}
	}
	if n := driverVersionNotes[driver]; n != "" {
		version += " (" + n + ")"
	}
	return module, version
}

// TransformDriver is a Driver that can run consume-transform-produce clients.
type TransformDriver interface {
	// NewTransformer returns a transformer configured from s.
	NewTransformer(s TransformSettings) (Transformer, error)
}

// TransformSettings configure a transformer: a group member reading the input topic
// (Consumer.Topic, never auto-committing) whose client also produces to the output topic.
type TransformSettings struct {
	Consumer ConsumerSettings
	// Producer configures the output producer; Producer.TransactionalID names it when
	// Transactional.
	Producer ProducerSettings
	// Transactional writes outputs in transactions that also commit the input offsets.
	Transactional bool
}

// Transformer reads its group's share of an input topic and writes output records.
type Transformer interface {
	// Poll is Consumer.Poll on the input topic.
	Poll(ctx context.Context, wait time.Duration) (Polled, error)
	// Begin starts a transaction (transactional transformers only).
	Begin() error
	// Send writes one output record, in the open transaction when transactional; done
	// receives the outcome as for Producer.Send.
	Send(ctx context.Context, m *Message, done Outcome)
	// Flush waits until every sent output has an outcome or ctx ends.
	Flush(ctx context.Context) error
	// Commit commits input offsets outside any transaction (non-transactional transformers).
	Commit(ctx context.Context, offsets map[int32]int64) error
	// End ends the open transaction: with commit it adds offsets (the next input offsets to
	// read, for every record polled since the last End) to the transaction and commits it,
	// else it aborts. committed is false when the transaction aborted, on request or because
	// the group rebalanced; err is set when the outcome is unknown. Either way the reading
	// position may be past the inputs of a transaction that did not commit: the caller
	// replaces the transformer to read from the committed offsets again.
	End(ctx context.Context, offsets map[int32]int64, commit bool) (committed bool, err error)
	// Close closes the client without ending an open transaction (a crash leaves it to the
	// coordinator, which aborts it when the transformer's successor fences it).
	Close()
}
