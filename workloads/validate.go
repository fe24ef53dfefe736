package workloads

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/token"
)

// HeaderSize is the size in bytes of the header kchaos writes at the start of every record
// value (run id, producer id, sequence, intended send time); messageSize must be at least this.
const HeaderSize = 32

// Allowed values, as listed in error messages.
var (
	KeyDistributors = []string{"NO_KEY", "KEY_ROUND_ROBIN", "RANDOM_NANO"}
	Drivers         = []string{"franz-go", "sarama", "kafka-go", "confluent"}
	AcksValues      = []string{"0", "1", "all", "-1"}
	Compressions    = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	ConsumerModes   = []string{ModeGroup, ModeAssign, ModeBatch, ModeAsync, ModeTransform}
	CommitModes     = []string{CommitAuto, CommitAfterProcessing, CommitBeforeProcessing, CommitNone, CommitTransactional}
	// TransformCommitModes are the commit modes mode transform allows.
	TransformCommitModes = []string{CommitTransactional, CommitAfterProcessing, CommitBeforeProcessing}
	IsolationLevels      = []string{"read_uncommitted", "read_committed"}
	KeyDistributions     = []string{DistUniform, DistZipf, DistRoundRobin}
	topicConfigPatten    = regexp.MustCompile(`^[a-z][a-z0-9]*(\.[a-z0-9]+)*$`)
)

// validator collects errors that name file, line, field and what is allowed.
type validator struct {
	file string
	pos  map[string]*token.Position
	// setBy names the client property that set a field (see applyClient): "FILE:LINE (key)".
	setBy map[string]string
	errs  []error
}

// has reports whether the workload or a client property set field.
func (v *validator) has(field string) bool {
	_, ok := v.pos[field]
	return ok || v.setBy[field] != ""
}

func (v *validator) errf(field, format string, args ...any) {
	where := v.file
	if p := v.pos[field]; p != nil {
		where = fmt.Sprintf("%s:%d:%d", v.file, p.Line, p.Column)
	} else if s := v.setBy[field]; s != "" {
		where = s
	}
	v.errs = append(v.errs, fmt.Errorf("workloads: %s: %s: %s", where, field, fmt.Sprintf(format, args...)))
}

func (v *validator) oneOf(field, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		v.errf(field, "%q is not allowed; allowed: %s", value, strings.Join(allowed, ", "))
	}
}

func (v *validator) atLeast(field string, value, min float64) {
	if value < min {
		v.errf(field, "%v is too small; must be at least %v", value, min)
	}
}

// PayloadPath returns where the payload file is: PayloadFile itself when absolute, else
// relative to the workload file's directory; "" without one.
func (rc *RunConfig) PayloadPath() string {
	if rc.PayloadFile == "" || filepath.IsAbs(rc.PayloadFile) {
		return rc.PayloadFile
	}
	return filepath.Join(filepath.Dir(rc.File), rc.PayloadFile)
}

// payloadFile checks that the payload file at path (RunConfig.PayloadPath) is a readable
// file with at least one byte: a run would otherwise send zeros, and a compression
// comparison would measure the wrong data.
func (v *validator) payloadFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		v.errf("payloadFile", "cannot read %s: %v", path, errors.Unwrap(err))
		return
	}
	defer f.Close()
	var one [1]byte
	if n, _ := f.Read(one[:]); n == 0 {
		v.errf("payloadFile", "%s is empty or not a file", path)
	}
}

// maxPayloadPool bounds the memory of one producer's randomized payloads (64MiB).
const maxPayloadPool = 64 << 20

// validate fills defaults into rc and checks every field.
func (rc *RunConfig) validate(pos map[string]*token.Position) error {
	v := &validator{file: rc.File, pos: pos, setBy: rc.setBy}
	w := &rc.Workload
	def := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	_, has := pos["topics"]
	if has {
		v.atLeast("topics", float64(w.Topics), 1)
	}
	def(&w.Topics, 1)
	if _, has = pos["partitionsPerTopic"]; has {
		v.atLeast("partitionsPerTopic", float64(w.PartitionsPerTopic), 1)
	}
	def(&w.PartitionsPerTopic, 1)
	if w.MessageSize == 0 {
		w.MessageSize = 1 << 10
	}
	if w.MessageSize < HeaderSize || w.MessageSize > 64<<20 {
		v.errf("messageSize", "%s is out of range; allowed: %dB to 64MiB (every value starts with a %d-byte header)", w.MessageSize, HeaderSize, HeaderSize)
	}
	if w.PayloadFile != "" {
		v.payloadFile(rc.PayloadPath())
	}
	if _, has = pos["randomBytesRatio"]; has && (w.RandomBytesRatio <= 0 || w.RandomBytesRatio > 1) {
		v.errf("randomBytesRatio", "%v is out of range; allowed: above 0, at most 1", w.RandomBytesRatio)
	}
	if w.RandomBytesRatio == 0 {
		w.RandomBytesRatio = 1
	}
	if _, has = pos["randomizedPayloadPoolSize"]; has {
		v.atLeast("randomizedPayloadPoolSize", float64(w.RandomizedPayloadPoolSize), 1)
		if int64(w.RandomizedPayloadPoolSize)*int64(w.MessageSize) > maxPayloadPool {
			v.errf("randomizedPayloadPoolSize", "%d payloads of %s are more than %s per producer", w.RandomizedPayloadPoolSize, w.MessageSize, Size(maxPayloadPool))
		}
	}
	def(&w.RandomizedPayloadPoolSize, 1)
	if w.KeyDistributor != "" {
		v.oneOf("keyDistributor", w.KeyDistributor, KeyDistributors)
		if w.Keys != nil {
			v.errf("keys", "keys and keyDistributor are both set; keep one")
		}
	} else if w.Keys == nil {
		// With keys, which replace it, the file's key distributor stays unset.
		w.KeyDistributor = "NO_KEY"
	}
	if w.SubscriptionsPerTopic == nil {
		one := 1
		w.SubscriptionsPerTopic = &one
	}
	v.atLeast("subscriptionsPerTopic", float64(*w.SubscriptionsPerTopic), 0)
	if _, has = pos["consumerPerSubscription"]; has {
		v.atLeast("consumerPerSubscription", float64(w.ConsumerPerSubscription), 1)
	}
	def(&w.ConsumerPerSubscription, 1)
	if _, has = pos["producersPerTopic"]; has {
		v.atLeast("producersPerTopic", float64(w.ProducersPerTopic), 1)
	}
	def(&w.ProducersPerTopic, 1)
	v.atLeast("producerRate", w.ProducerRate, 0)
	v.atLeast("consumerBacklogSizeGB", w.ConsumerBacklogSizeGB, 0)
	v.atLeast("testDurationMinutes", w.TestDurationMinutes, 0)
	v.atLeast("warmupDurationMinutes", w.WarmupDurationMinutes, 0)
	if w.Duration == 0 {
		w.Duration = Duration(time.Minute)
		if w.TestDurationMinutes > 0 {
			w.Duration = Duration(w.TestDurationMinutes * float64(time.Minute))
		}
	}
	if w.Warmup == 0 && w.WarmupDurationMinutes > 0 {
		w.Warmup = Duration(w.WarmupDurationMinutes * float64(time.Minute))
	}
	if w.Driver == "" {
		w.Driver = "franz-go"
	}
	v.oneOf("driver", w.Driver, Drivers)
	if w.Seed == 0 {
		w.Seed = 1
	}
	if _, has = pos["replicationFactor"]; has {
		v.atLeast("replicationFactor", float64(w.ReplicationFactor), 1)
	}
	def(&w.ReplicationFactor, 1)
	if _, has = pos["brokers"]; has && w.Brokers < w.ReplicationFactor {
		v.errf("brokers", "%d is too small; must be at least replicationFactor (%d)", w.Brokers, w.ReplicationFactor)
	}
	def(&w.Brokers, w.ReplicationFactor)
	rc.validateTopicConfig(v)
	if rc.Consumer.Mode == ModeTransform && (rc.Consumer.Commit == "" || rc.Consumer.Commit == CommitTransactional) {
		// Exactly-once from input to output needs input without retry duplicates.
		rc.Producer.Idempotence = true
	}
	rc.validateProducer(v)
	rc.validateConsumer(v)
	rc.validatePerformance(v)
	if w.Driver == "kafka-go" {
		rc.validateKafkaGo(v)
	}
	if w.Keys != nil {
		k := w.Keys
		if _, has = pos["keys.distinct"]; has {
			v.atLeast("keys.distinct", float64(k.Distinct), 1)
		}
		def(&k.Distinct, 1000)
		if k.Distribution == "" {
			k.Distribution = DistUniform
		}
		v.oneOf("keys.distribution", k.Distribution, KeyDistributions)
		if k.S == 0 {
			k.S = 1.1
		}
		if k.S <= 1 {
			v.errf("keys.s", "%v is not allowed; the zipf exponent must be greater than 1", k.S)
		}
	}
	return errors.Join(v.errs...)
}

func (rc *RunConfig) validatePerformance(v *validator) {
	if rc.Performance == nil {
		return
	}
	// Each config gets its own copy: the matrix may set its fields, and defaults are filled in.
	cp := *rc.Performance
	cp.Loads, cp.Rates = slices.Clone(cp.Loads), slices.Clone(cp.Rates)
	p := &cp
	rc.Performance = p
	if p.Capacity == 0 {
		p.Capacity = Duration(10 * time.Second)
	}
	if p.Capacity < Duration(3*time.Second) {
		v.errf("performance.capacity", "%s is too short; the search needs at least 3s", p.Capacity)
	}
	if len(p.Loads) == 0 && len(p.Rates) == 0 {
		p.Loads = []float64{0.25, 0.5, 0.75, 0.9}
	}
	for _, f := range p.Loads {
		if f <= 0 || f > 1.5 {
			v.errf("performance.loads", "%v is not allowed; a load is a fraction of the capacity in (0, 1.5]", f)
		}
	}
	for _, r := range p.Rates {
		if r <= 0 {
			v.errf("performance.rates", "%v is not allowed; a rate is records/s above 0", r)
		}
	}
	if p.Step == 0 {
		p.Step = Duration(4 * time.Second)
	}
	if p.Warmup == 0 {
		p.Warmup = Duration(time.Second)
	}
	if p.Warmup >= p.Step {
		v.errf("performance.warmup", "%s is not shorter than the step (%s)", p.Warmup, p.Step)
	}
}

func (rc *RunConfig) validateTopicConfig(v *validator) {
	for name, val := range rc.TopicConfig {
		field := "topicConfig." + name
		if _, ok := v.pos[field]; !ok {
			v.pos[field] = v.pos["topicConfig"]
		}
		if !topicConfigPatten.MatchString(name) {
			v.errf(field, "%q is not a Kafka topic config name (lowercase words joined by dots)", name)
			continue
		}
		s := fmt.Sprint(val)
		switch val.(type) {
		case map[string]any, []any, nil:
			v.errf(field, "want a single value, got %v", val)
			continue
		}
		switch name {
		case "min.insync.replicas":
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				v.errf(field, "%q is not allowed; allowed: an integer of at least 1", s)
			}
		case "unclean.leader.election.enable":
			v.oneOf(field, s, []string{"true", "false"})
		case "flush.messages":
			if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 1 {
				v.errf(field, "%q is not allowed; allowed: an integer of at least 1", s)
			}
		}
	}
}

func (rc *RunConfig) validateProducer(v *validator) {
	p := &rc.Producer
	if p.Acks == "" {
		p.Acks = "all"
	}
	v.oneOf("producer.acks", p.Acks, AcksValues)
	if p.Acks == "-1" {
		p.Acks = "all"
	}
	if p.BatchSize == 0 {
		p.BatchSize = 16 << 10
	}
	if p.BatchSize > 64<<20 {
		v.errf("producer.batchSize", "%s is too large; allowed: 1B to 64MiB", p.BatchSize)
	}
	if p.Linger == nil {
		d := Duration(5 * time.Millisecond)
		p.Linger = &d
	}
	if p.Compression == "" {
		p.Compression = "none"
	}
	v.oneOf("producer.compression", p.Compression, Compressions)
	if v.has("producer.maxInFlight") {
		v.atLeast("producer.maxInFlight", float64(p.MaxInFlight), 1)
	}
	if p.MaxInFlight == 0 {
		p.MaxInFlight = 5
	}
	if p.Retries == nil {
		r := 2147483647
		p.Retries = &r
	}
	v.atLeast("producer.retries", float64(*p.Retries), 0)
	if p.RequestTimeout == 0 {
		p.RequestTimeout = Duration(30 * time.Second)
	}
	if p.DeliveryTimeout == 0 {
		p.DeliveryTimeout = Duration(2 * time.Minute)
	}
	if least := *p.Linger + p.RequestTimeout; p.DeliveryTimeout < least && !v.has("producer.deliveryTimeout") {
		// As the Java producer does, a default delivery timeout grows to linger + request
		// timeout (a client property may raise request.timeout.ms past it).
		p.DeliveryTimeout = least
	}
	if p.Transactional {
		p.Idempotence = true
	}
	if v.has("producer.transactionSize") {
		v.atLeast("producer.transactionSize", float64(p.TransactionSize), 1)
	}
	if p.TransactionSize == 0 {
		p.TransactionSize = 100
	}
	if p.AbortRatio < 0 || p.AbortRatio > 1 {
		v.errf("producer.abortRatio", "%v is not allowed; allowed: 0 to 1", p.AbortRatio)
	}
	if p.Idempotence {
		if p.Acks != "all" {
			v.errf("producer.idempotence", "idempotence requires acks=all (Kafka refuses enable.idempotence with acks=%s)", p.Acks)
		}
		if p.MaxInFlight > 5 {
			v.errf("producer.idempotence", "idempotence requires maxInFlight of at most 5, got %d", p.MaxInFlight)
		}
		if *p.Retries == 0 {
			v.errf("producer.idempotence", "idempotence requires retries greater than 0")
		}
	}
}

func (rc *RunConfig) validateConsumer(v *validator) {
	c := &rc.Consumer
	if c.Mode == "" {
		c.Mode = ModeGroup
	}
	v.oneOf("consumer.mode", c.Mode, ConsumerModes)
	switch {
	case c.Commit == "" && c.Mode == ModeTransform:
		c.Commit = CommitTransactional
	case c.Commit == "":
		c.Commit = CommitAuto
	}
	v.oneOf("consumer.commit", c.Commit, CommitModes)
	if c.Mode == ModeTransform {
		if !slices.Contains(TransformCommitModes, c.Commit) {
			v.errf("consumer.commit", "%s is not allowed with mode transform; allowed: %s", c.Commit, strings.Join(TransformCommitModes, ", "))
		}
		if *rc.SubscriptionsPerTopic != 1 {
			v.errf("subscriptionsPerTopic", "mode transform needs exactly one subscription (the transforming group), got %d", *rc.SubscriptionsPerTopic)
		}
	} else if c.Commit == CommitTransactional {
		v.errf("consumer.commit", "transactional is allowed with mode transform only")
	}
	if c.AutoCommitInterval == 0 {
		c.AutoCommitInterval = Duration(5 * time.Second)
	}
	if v.has("consumer.batchSize") {
		v.atLeast("consumer.batchSize", float64(c.BatchSize), 1)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = Duration(100 * time.Millisecond)
	}
	if v.has("consumer.workers") {
		v.atLeast("consumer.workers", float64(c.Workers), 1)
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = Duration(time.Second)
	}
	switch {
	case c.IsolationLevel == "" && c.Mode == ModeTransform:
		c.IsolationLevel = "read_committed"
	case c.IsolationLevel == "":
		c.IsolationLevel = "read_uncommitted"
	}
	v.oneOf("consumer.isolationLevel", c.IsolationLevel, IsolationLevels)
	if c.SessionTimeout == 0 {
		c.SessionTimeout = Duration(45 * time.Second)
	}
	if c.MaxPollInterval == 0 {
		c.MaxPollInterval = Duration(5 * time.Minute)
	}
	if c.HeartbeatInterval != 0 && c.HeartbeatInterval >= c.SessionTimeout {
		v.errf("consumer.heartbeatInterval", "%s is not allowed; it must be below consumer.sessionTimeout (%s)", c.HeartbeatInterval, c.SessionTimeout)
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = Duration(100 * time.Millisecond)
	}
	if v.has("consumer.maxPollRecords") {
		v.atLeast("consumer.maxPollRecords", float64(c.MaxPollRecords), 1)
	}
	if c.Mode == ModeAsync && c.Commit == CommitBeforeProcessing {
		v.errf("consumer.commit", "%s is not allowed with mode async; allowed: auto, manual-after-processing, none", c.Commit)
	}
}

// TopicConfigStrings returns the topic configs as strings, for CreateTopics.
func (rc *RunConfig) TopicConfigStrings() map[string]string {
	m := make(map[string]string, len(rc.TopicConfig))
	for k, v := range rc.TopicConfig {
		m[k] = fmt.Sprint(v)
	}
	return m
}

// MinInsyncReplicas returns the topic's min.insync.replicas, or 0 when not set.
func (rc *RunConfig) MinInsyncReplicas() int {
	n, _ := strconv.Atoi(fmt.Sprint(rc.TopicConfig["min.insync.replicas"]))
	return n
}

// kafkaGoRecordOverhead is what segmentio/kafka-go's Writer counts beyond a record's key and
// value against its batch limit (offset, sizes, timestamp, attributes), rounded up for keys.
const kafkaGoRecordOverhead = 64

// validateKafkaGo refuses what segmentio/kafka-go cannot do: it has no idempotent or
// transactional producer (so no consume-transform-produce either), no static group
// membership, no per-connection in-flight limit (its Writer sends one batch per partition at
// a time) and no delivery timeout (it retries MaxAttempts times); and its Writer refuses a
// record larger than its batch (BatchBytes, which batch.size sets), where Kafka's producer
// sends such a record in a batch of its own.
func (rc *RunConfig) validateKafkaGo(v *validator) {
	const why = "driver kafka-go"
	p, c := &rc.Producer, &rc.Consumer
	switch {
	case p.Transactional:
		v.errf("producer.transactional", "not supported by %s: kafka-go has no transactional producer", why)
	case c.Mode == ModeTransform:
		v.errf("consumer.mode", "transform is not supported by %s: kafka-go has no transactional producer to consume-transform-produce with", why)
	case p.Idempotence:
		v.errf("producer.idempotence", "not supported by %s: kafka-go has no idempotent producer", why)
	}
	if c.StaticMembership {
		v.errf("consumer.staticMembership", "not supported by %s: kafka-go's consumer group has no group.instance.id", why)
	}
	if v.has("producer.maxInFlight") {
		v.errf("producer.maxInFlight", "not supported by %s: its Writer sends one batch per partition at a time and has no in-flight setting", why)
	}
	if v.has("producer.deliveryTimeout") {
		v.errf("producer.deliveryTimeout", "not supported by %s: its Writer has no delivery timeout (it makes retries+1 attempts)", why)
	}
	if need := int64(rc.MessageSize) + kafkaGoRecordOverhead; int64(p.BatchSize) < need {
		field := "producer.batchSize"
		if !v.has(field) {
			field = "messageSize"
		}
		v.errf(field, "messageSize %s does not fit producer.batchSize %s for %s: its Writer refuses records larger than a batch; batchSize must be at least %s",
			rc.MessageSize, p.BatchSize, why, Size(need))
	}
}
