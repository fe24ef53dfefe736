// Package workloads reads kchaos workload files: YAML that accepts OpenMessaging Benchmark's
// workload fields unchanged and adds the delivery settings kchaos compares (acks, batching,
// idempotence, consumer modes, topic configs), a driver, a chaos schedule and a matrix of
// values that expands into one RunConfig per combination. The shipped workload files live in
// this folder and are embedded (Shipped, Open).
package workloads

import (
	"github.com/goccy/go-yaml/ast"
)

// Workload is one workload file as written. Load fills defaults and validates it; a
// RunConfig holds one expanded combination.
type Workload struct {
	// Name is the workload's name (OMB). Default: the file name without extension.
	Name string `yaml:"name"`
	// Description is free text shown in reports.
	Description string `yaml:"description"`
	// Topics is the number of topics (OMB); default 1.
	Topics int `yaml:"topics"`
	// PartitionsPerTopic is the partition count of each topic (OMB); default 1.
	PartitionsPerTopic int `yaml:"partitionsPerTopic"`
	// MessageSize is the record value size in bytes, header included (OMB); default 1KiB.
	MessageSize Size `yaml:"messageSize"`
	// PayloadFile is OMB's payload file; when set its bytes fill the value after the header.
	PayloadFile string `yaml:"payloadFile"`
	// UseRandomizedPayloads, RandomBytesRatio and RandomizedPayloadPoolSize are OMB's
	// randomized payload options: each producer makes RandomizedPayloadPoolSize bodies
	// (default 1, at most 64MiB of them) for the bytes after the header, the first
	// RandomBytesRatio of each random and the rest zeros (default 1: all random; 0.5 gives
	// compression about half to work with), and each record carries one picked at random.
	UseRandomizedPayloads     bool    `yaml:"useRandomizedPayloads"`
	RandomBytesRatio          float64 `yaml:"randomBytesRatio"`
	RandomizedPayloadPoolSize int     `yaml:"randomizedPayloadPoolSize"`
	// KeyDistributor is OMB's key choice: NO_KEY (default), KEY_ROUND_ROBIN, RANDOM_NANO.
	// Keys, when set, replaces it.
	KeyDistributor string `yaml:"keyDistributor"`
	// SubscriptionsPerTopic is the number of consumer groups per topic (OMB); default 1.
	SubscriptionsPerTopic *int `yaml:"subscriptionsPerTopic"`
	// ConsumerPerSubscription is the number of consumers in each group (OMB); default 1.
	ConsumerPerSubscription int `yaml:"consumerPerSubscription"`
	// ProducersPerTopic is the number of producers per topic (OMB); default 1.
	ProducersPerTopic int `yaml:"producersPerTopic"`
	// ProducerRate is the total records per second over all producers (OMB); 0 searches for
	// the highest sustainable rate. Default 0.
	ProducerRate float64 `yaml:"producerRate"`
	// ConsumerBacklogSizeGB makes consumers wait until this much backlog has built up before
	// they start (OMB); default 0.
	ConsumerBacklogSizeGB float64 `yaml:"consumerBacklogSizeGB"`
	// BacklogDrainRatio is OMB's backlog drain ratio; accepted and recorded, not used.
	BacklogDrainRatio float64 `yaml:"backlogDrainRatio"`
	// TestDurationMinutes and WarmupDurationMinutes are OMB's durations; Duration and Warmup
	// take precedence.
	TestDurationMinutes   float64 `yaml:"testDurationMinutes"`
	WarmupDurationMinutes float64 `yaml:"warmupDurationMinutes"`

	// Duration is how long producers run after warmup; default 1m (or testDurationMinutes).
	Duration Duration `yaml:"duration"`
	// Warmup runs load before measuring; histograms are reset after it. Default 0.
	Warmup Duration `yaml:"warmup"`
	// Driver is the client library: franz-go (default) or sarama.
	Driver string `yaml:"driver"`
	// Seed seeds every random choice of the run; default 1.
	Seed int64 `yaml:"seed"`
	// ReplicationFactor of created topics; default 1.
	ReplicationFactor int `yaml:"replicationFactor"`
	// Brokers is the number of brokers of the embedded cluster, at least ReplicationFactor;
	// default ReplicationFactor. With five or more, five are controller voters, so any two
	// brokers can be down and the cluster still elects leaders and shrinks ISRs.
	Brokers int `yaml:"brokers"`
	// TopicConfig holds topic configs by Kafka name (min.insync.replicas, flush.messages,
	// unclean.leader.election.enable, ...); values are passed as strings.
	TopicConfig map[string]any `yaml:"topicConfig"`
	// Producer is the producer client configuration.
	Producer ProducerConfig `yaml:"producer"`
	// Consumer is the consumer client configuration.
	Consumer ConsumerConfig `yaml:"consumer"`
	// Client holds Kafka client properties by their Java-client names for every client of
	// the run: how to connect (security.protocol, ssl.*, sasl.*; see package clientconfig)
	// and producer or consumer properties, which set the field they name (acks sets
	// producer.acks, fetch.min.bytes consumer.fetchMinBytes; see IsClientSetting). A
	// property contradicting a field the file sets is an error.
	Client map[string]any `yaml:"client"`
	// Keys chooses record keys; it replaces KeyDistributor when set.
	Keys *KeysConfig `yaml:"keys"`
	// Performance, when set, measures the config's cost with no fault in force before the
	// run proper (whose load and faults are the fields above and Chaos).
	Performance *PerformanceConfig `yaml:"performance"`
	// Chaos is the fault schedule, kept as YAML for the chaos package.
	Chaos *Raw `yaml:"chaos"`
	// Matrix is the configurations to run: a mapping of field names to lists of values (every
	// combination, the last key varying fastest) or a list of mappings of field names to
	// values (exactly those combinations); see MatrixAliases.
	Matrix *Raw `yaml:"matrix"`
	// Claims names the claims of CLAIMS.md this file is an experiment for: each entry's id and
	// the configurations on its unsafe and safe side, selected by their values (see Claim).
	Claims *Raw `yaml:"claims"`
	// Trials is the most times the whole file runs, each time with new seeds, until every
	// claim's unsafe side has shown its anomaly; default 1.
	Trials int `yaml:"trials"`
	// TrialBudget bounds the wall time of the trials: no trial starts once the ones so far
	// took this long or the next would likely end past it; default 0, no bound.
	TrialBudget Duration `yaml:"trialBudget"`
}

// ProducerConfig is the producer client configuration.
type ProducerConfig struct {
	// Acks is 0, 1, all or -1 (same as all); default all.
	Acks string `yaml:"acks"`
	// BatchSize is the maximum bytes of one partition's batch; default 16KiB (Kafka's).
	BatchSize Size `yaml:"batchSize"`
	// Linger is how long a producer waits to fill a batch; default 5ms (Kafka 4.0's).
	Linger *Duration `yaml:"linger"`
	// Compression is none (default), gzip, snappy, lz4 or zstd.
	Compression string `yaml:"compression"`
	// Idempotence enables the idempotent producer; default false.
	Idempotence bool `yaml:"idempotence"`
	// MaxInFlight is the maximum in-flight requests per broker; default 5.
	MaxInFlight int `yaml:"maxInFlight"`
	// Retries is how many times a failed produce is retried; default 2147483647 (Kafka's).
	Retries *int `yaml:"retries"`
	// RequestTimeout bounds one produce request; default 30s.
	RequestTimeout Duration `yaml:"requestTimeout"`
	// DeliveryTimeout bounds a record from send to outcome; default 2m (Kafka's).
	DeliveryTimeout Duration `yaml:"deliveryTimeout"`
	// Transactional sends records in transactions (idempotence implied); default false.
	Transactional bool `yaml:"transactional"`
	// TransactionSize is the records per transaction; default 100.
	TransactionSize int `yaml:"transactionSize"`
	// AbortRatio is the fraction of transactions aborted on purpose, so read_committed
	// consumers can be checked for aborted reads; default 0.
	AbortRatio float64 `yaml:"abortRatio"`
}

// PerformanceConfig asks for a config's performance figures, measured before the run proper
// with no fault in force, each step on a topic of its own that is deleted after it (so what it
// wrote costs no disk): the capacity (the highest rate the cluster sustains with a bounded
// queue, found by a closed-loop search) and the publish and end-to-end latency at offered
// loads given as fractions of that capacity and as absolute rates — the points of a
// latency–throughput curve. The run proper's history and checks do not cover these steps.
type PerformanceConfig struct {
	// Capacity is how long the capacity search runs; default 10s, at least 3s.
	Capacity Duration `yaml:"capacity"`
	// Loads are offered loads as fractions of the config's capacity, each in (0, 1.5];
	// default 0.25, 0.5, 0.75, 0.9 when Rates is empty too.
	Loads []float64 `yaml:"loads"`
	// Rates are offered loads in records/s shared by every config, so configs can be compared
	// at the same load; default none.
	Rates []float64 `yaml:"rates"`
	// Step is how long each offered load runs; default 4s.
	Step Duration `yaml:"step"`
	// Warmup is the start of each step left out of its figures; default 1s, less than Step.
	Warmup Duration `yaml:"warmup"`
}

// Consumer modes.
const (
	// ModeGroup subscribes through a consumer group and processes each polled record in turn.
	ModeGroup = "group"
	// ModeAssign reads assigned partitions without a group; offsets are committed under the
	// consumer's group id when committing is on.
	ModeAssign = "assign"
	// ModeBatch collects BatchSize records or waits BatchTimeout, then processes the batch.
	ModeBatch = "batch"
	// ModeAsync hands records to Workers goroutines and commits what they finished every
	// CommitInterval.
	ModeAsync = "async"
	// ModeTransform is Kafka's consume-transform-produce: each consumer reads its group's
	// share of the input topic and writes one record per input record to the output topic
	// (the input topic's name plus OutputTopicSuffix, created alike), one transaction per
	// poll. With Commit transactional the input offsets are committed in that transaction
	// (exactly-once); with manual-after-processing or manual-before-processing they are
	// committed after or before the outputs are acknowledged, without transactions.
	ModeTransform = "transform"
)

// OutputTopicSuffix names the output topic of a transform run: input topic + "-out".
const OutputTopicSuffix = "-out"

// Commit modes.
const (
	// CommitAuto is the client's auto-commit of polled positions every AutoCommitInterval.
	CommitAuto = "auto"
	// CommitAfterProcessing commits after records are processed (at-least-once).
	CommitAfterProcessing = "manual-after-processing"
	// CommitBeforeProcessing commits polled positions before processing (at-most-once).
	CommitBeforeProcessing = "manual-before-processing"
	// CommitNone never commits.
	CommitNone = "none"
	// CommitTransactional commits the input offsets in the transaction that writes the
	// outputs (mode transform only; the transforming producer is transactional and every
	// producer idempotent).
	CommitTransactional = "transactional"
)

// ConsumerConfig is the consumer configuration.
type ConsumerConfig struct {
	// Mode is group (default), assign, batch, async or transform.
	Mode string `yaml:"mode"`
	// Commit is auto (default), manual-after-processing, manual-before-processing, none, or
	// transactional (mode transform only, where it is the default).
	Commit string `yaml:"commit"`
	// AutoCommitInterval is the auto-commit period; default 5s (Kafka's).
	AutoCommitInterval Duration `yaml:"autoCommitInterval"`
	// ProcessingTime is the time spent processing one record; default 0.
	ProcessingTime Duration `yaml:"processingTime"`
	// ProcessingOverhead is the fixed cost of one processing call, such as a round trip to a
	// database: mode group makes one call per record, mode batch one per batch, mode async
	// one per record on each worker; default 0.
	ProcessingOverhead Duration `yaml:"processingOverhead"`
	// BatchSize is the records per batch in batch mode; default 100.
	BatchSize int `yaml:"batchSize"`
	// BatchTimeout ends a partial batch in batch mode; default 100ms.
	BatchTimeout Duration `yaml:"batchTimeout"`
	// Workers is the number of processing goroutines in async mode; default 4.
	Workers int `yaml:"workers"`
	// CommitInterval is how often async mode commits finished records; default 1s.
	CommitInterval Duration `yaml:"commitInterval"`
	// IsolationLevel is read_uncommitted (default) or read_committed (default in mode
	// transform). It applies to every consumer of the run and to the final drain.
	IsolationLevel string `yaml:"isolationLevel"`
	// StaticMembership gives each consumer a group.instance.id; default false.
	StaticMembership bool `yaml:"staticMembership"`
	// SessionTimeout is the group session timeout; default 45s (Kafka's).
	SessionTimeout Duration `yaml:"sessionTimeout"`
	// MaxPollInterval is the longest time between polls before the member is expelled;
	// default 5m (Kafka's).
	MaxPollInterval Duration `yaml:"maxPollInterval"`
	// HeartbeatInterval is the group heartbeat period (heartbeat.interval.ms); must be
	// below SessionTimeout. Default 0: the driver's (franz-go 3s, Sarama SessionTimeout/10).
	HeartbeatInterval Duration `yaml:"heartbeatInterval"`
	// FetchMinBytes is the least data a fetch waits for (fetch.min.bytes); default 0: the
	// driver's, 1 byte as in Kafka.
	FetchMinBytes Size `yaml:"fetchMinBytes"`
	// FetchMaxWait is how long a fetch waits for FetchMinBytes (fetch.max.wait.ms); default
	// 100ms (Kafka's is 500ms; shorter keeps end-to-end latency low at low rates).
	FetchMaxWait Duration `yaml:"fetchMaxWait"`
	// FetchMaxBytes bounds one fetch response (fetch.max.bytes); default 0: the driver's
	// (franz-go 50MiB as Kafka, Sarama unbounded).
	FetchMaxBytes Size `yaml:"fetchMaxBytes"`
	// MaxPartitionFetchBytes bounds one partition's data in a fetch
	// (max.partition.fetch.bytes); default 0: the driver's, 1MiB as in Kafka.
	MaxPartitionFetchBytes Size `yaml:"maxPartitionFetchBytes"`
	// MaxPollRecords bounds the records one poll returns (max.poll.records); default 0:
	// what the client has buffered (Sarama: at most 10000). Kafka's default is 500.
	MaxPollRecords int `yaml:"maxPollRecords"`
}

// Key distributions.
const (
	DistUniform    = "uniform"
	DistZipf       = "zipf"
	DistRoundRobin = "round-robin"
)

// KeysConfig chooses record keys "k0" ... "k<Distinct-1>".
type KeysConfig struct {
	// Distinct is the number of distinct keys; default 1000.
	Distinct int `yaml:"distinct"`
	// Distribution is uniform (default), zipf or round-robin.
	Distribution string `yaml:"distribution"`
	// S is the zipf exponent (> 1); default 1.1.
	S float64 `yaml:"s"`
}

// Raw is a YAML value kept as written, with its position, for a package that owns its
// meaning (the chaos schedule) or for matrix expansion.
type Raw struct {
	// Node is the parsed value.
	Node ast.Node
	// File, Line and Column locate the value.
	File   string
	Line   int
	Column int
}

// UnmarshalYAML keeps the node.
func (r *Raw) UnmarshalYAML(n ast.Node) error {
	r.Node = n
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		r.Line, r.Column = tk.Position.Line, tk.Position.Column
	}
	return nil
}

// String returns the value as YAML text.
func (r *Raw) String() string {
	if r == nil || r.Node == nil {
		return ""
	}
	return r.Node.String()
}
