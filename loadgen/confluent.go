//go:build cgo

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/clientconfig"
)

// confluentDriver runs clients of github.com/confluentinc/confluent-kafka-go/v2, the Go
// binding of librdkafka (bundled, linked through cgo). Producers, consumers and
// transformers are librdkafka's; admin calls go through its AdminClient, except the wait for
// partition leaders after creating topics, which asks every broker on its own and so uses a
// franz-go client (librdkafka cannot address one broker).
type confluentDriver struct {
	bootstrap []string
	client    *clientconfig.Config
	admin     *kafka.AdminClient
	seeds     *kgo.Client
}

var (
	_ Driver          = (*confluentDriver)(nil)
	_ TransformDriver = (*confluentDriver)(nil)
)

func init() {
	driverErrors = append(driverErrors, confluentErrorName)
	_, v := kafka.LibraryVersion()
	driverVersionNotes["confluent"] = "librdkafka " + v
}

// confluentErrorName names librdkafka's errors: a broker's error code by its Kafka name,
// local errors by the names ErrorName gives other clients' (TIMEOUT, CONNECTION_LOST,
// CLIENT_CLOSED); other local errors by their text.
func confluentErrorName(err error) (string, bool) {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return "", false
	}
	code := ke.Code()
	if code > 0 {
		return kafkaErrorName(int16(code)), true
	}
	switch code {
	case kafka.ErrMsgTimedOut, kafka.ErrTimedOut:
		return "TIMEOUT", false
	case kafka.ErrTransport, kafka.ErrAllBrokersDown:
		return "CONNECTION_LOST", false
	case kafka.ErrDestroy, kafka.ErrPurgeQueue, kafka.ErrPurgeInflight:
		return "CLIENT_CLOSED", false
	case kafka.ErrUnknownTopic, kafka.ErrUnknownPartition:
		return "UNKNOWN_TOPIC_OR_PARTITION", false
	}
	return "", false
}

// confluentConfig is the librdkafka configuration every client starts from: bootstrap
// servers, client id, and TLS and SASL as client says.
func confluentConfig(bootstrap []string, clientID string, client *clientconfig.Config) (kafka.ConfigMap, error) {
	props, err := client.Librdkafka()
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	// librdkafka logs to stderr; only its errors (level 3) go there.
	cm := kafka.ConfigMap{"bootstrap.servers": joinComma(bootstrap), "client.id": clientID, "log_level": 3}
	for k, v := range props {
		cm[k] = v
	}
	return cm, nil
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func newConfluentDriver(bootstrap []string, client *clientconfig.Config) (Driver, error) {
	cm, err := confluentConfig(bootstrap, "kchaos-admin", client)
	if err != nil {
		return nil, err
	}
	admin, err := kafka.NewAdminClient(&cm)
	if err != nil {
		return nil, fmt.Errorf("loadgen: confluent admin client: %w", err)
	}
	seeds, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap...)}, client.FranzOpts()...)...)
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("loadgen: confluent driver's metadata client: %w", err)
	}
	return &confluentDriver{bootstrap: bootstrap, client: client, admin: admin, seeds: seeds}, nil
}

func (d *confluentDriver) Close() error {
	d.admin.Close()
	d.seeds.Close()
	return nil
}

func (d *confluentDriver) CreateTopics(ctx context.Context, topics []string, partitions int32, rf int16, configs map[string]string) error {
	specs := make([]kafka.TopicSpecification, 0, len(topics))
	for _, t := range topics {
		specs = append(specs, kafka.TopicSpecification{Topic: t, NumPartitions: int(partitions), ReplicationFactor: int(rf), Config: configs})
	}
	res, err := d.admin.CreateTopics(ctx, specs, kafka.SetAdminOperationTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("loadgen: create topics: %w", err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("loadgen: create topic %s: %w", r.Topic, r.Error)
		}
	}
	return waitForLeaders(ctx, d.seeds, topics)
}

// DeleteTopics deletes topics; a topic that does not exist is not an error.
func (d *confluentDriver) DeleteTopics(ctx context.Context, topics []string) error {
	res, err := d.admin.DeleteTopics(ctx, topics, kafka.SetAdminOperationTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("loadgen: delete topics: %w", err)
	}
	for _, r := range res {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrUnknownTopicOrPart {
			return fmt.Errorf("loadgen: delete topic %s: %w", r.Topic, r.Error)
		}
	}
	return nil
}

// EndOffsets lists each partition's latest offset: the high watermark, or with
// readCommitted the last stable offset.
func (d *confluentDriver) EndOffsets(ctx context.Context, topic string, readCommitted bool) (map[int32]int64, error) {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	meta, err := d.admin.GetMetadata(&topic, false, int(timeout.Milliseconds()))
	if err != nil {
		return nil, fmt.Errorf("loadgen: metadata %s: %w", topic, err)
	}
	tm, ok := meta.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError {
		return nil, fmt.Errorf("loadgen: metadata %s: %w", topic, tm.Error)
	}
	req := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for _, p := range tm.Partitions {
		req[kafka.TopicPartition{Topic: &topic, Partition: p.ID}] = kafka.LatestOffsetSpec
	}
	level := kafka.IsolationLevelReadUncommitted
	if readCommitted {
		level = kafka.IsolationLevelReadCommitted
	}
	res, err := d.admin.ListOffsets(ctx, req, kafka.SetAdminIsolationLevel(level))
	if err != nil {
		return nil, fmt.Errorf("loadgen: list offsets %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for tp, info := range res.ResultInfos {
		if info.Error.Code() != kafka.ErrNoError {
			return nil, fmt.Errorf("loadgen: list offsets %s/%d: %w", topic, tp.Partition, info.Error)
		}
		out[tp.Partition] = int64(info.Offset)
	}
	return out, nil
}

func (d *confluentDriver) NewProducer(p ProducerSettings) (Producer, error) {
	return newConfluentProducer(p)
}

// confluentProducerConfig maps p onto librdkafka's producer properties, which keep Kafka's
// names (delivery.timeout.ms is librdkafka's message.timeout.ms). Partitioning is
// librdkafka's default (consistent_random: CRC32 of the key).
func confluentProducerConfig(p ProducerSettings) (kafka.ConfigMap, error) {
	cm, err := confluentConfig(p.Bootstrap, p.ClientID, p.Client)
	if err != nil {
		return nil, err
	}
	acks := p.Acks
	if acks == "all" {
		acks = "-1"
	}
	for k, v := range map[string]any{
		"acks":                                  acks,
		"linger.ms":                             strconv.FormatFloat(float64(time.Duration(*p.Linger))/float64(time.Millisecond), 'f', -1, 64),
		"batch.size":                            int(p.BatchSize),
		"compression.type":                      p.Compression,
		"enable.idempotence":                    p.Idempotence || p.Transactional,
		"max.in.flight.requests.per.connection": p.MaxInFlight,
		"retries":                               *p.Retries,
		"request.timeout.ms":                    int(time.Duration(p.RequestTimeout).Milliseconds()),
		"delivery.timeout.ms":                   int(time.Duration(p.DeliveryTimeout).Milliseconds()),
		// Delivery reports carry the outcome (Opaque), partition and offset; not the key and
		// value, which the harness holds.
		"go.delivery.report.fields": "none",
	} {
		cm[k] = v
	}
	if p.Transactional {
		// librdkafka refuses a delivery timeout beyond transaction.timeout.ms (its default,
		// 60s, as the Java client's), which Kafka's default delivery timeout (2m) is.
		cm["transactional.id"] = p.TransactionalID
		cm["delivery.timeout.ms"] = min(cm["delivery.timeout.ms"].(int), confluentTxnTimeoutMs)
	}
	return cm, nil
}

// confluentTxnTimeoutMs is librdkafka's default transaction.timeout.ms.
const confluentTxnTimeoutMs = 60000

func newConfluentProducer(p ProducerSettings) (*confluentProducer, error) {
	cm, err := confluentProducerConfig(p)
	if err != nil {
		return nil, err
	}
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return nil, fmt.Errorf("loadgen: confluent producer: %w", err)
	}
	cp := &confluentProducer{p: kp, done: make(chan struct{}), timeout: time.Duration(p.DeliveryTimeout)}
	go cp.reports()
	if p.Transactional {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.DeliveryTimeout))
		err := kp.InitTransactions(ctx)
		cancel()
		if err != nil {
			cp.Close()
			return nil, fmt.Errorf("loadgen: init transactions: %w", err)
		}
	}
	return cp, nil
}

// confluentProducer is a librdkafka producer; each message carries its Outcome as Opaque
// and a goroutine passes the delivery reports on.
type confluentProducer struct {
	p        *kafka.Producer
	inflight inflight
	done     chan struct{}
	once     sync.Once
	// timeout is the delivery timeout, which bounds Close's wait for purged records.
	timeout time.Duration
}

var _ TxnProducer = (*confluentProducer)(nil)

// reports passes delivery reports on until the producer's events channel closes.
func (p *confluentProducer) reports() {
	defer close(p.done)
	for ev := range p.p.Events() {
		m, ok := ev.(*kafka.Message)
		if !ok {
			continue // client-level errors: each record's own report says what became of it
		}
		tp := m.TopicPartition
		if tp.Error != nil {
			m.Opaque.(Outcome).Done(tp.Partition, -1, tp.Error)
		} else {
			m.Opaque.(Outcome).Done(tp.Partition, int64(tp.Offset), nil)
		}
		p.inflight.doneOne()
	}
}

// Send produces m; while librdkafka's queue is full (queue.buffering.max.messages) it waits
// a millisecond at a time. Another error (a record over message.max.bytes, an unknown
// topic) is m's outcome.
func (p *confluentProducer) Send(ctx context.Context, m *Message, done Outcome) {
	km := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &m.Topic, Partition: kafka.PartitionAny},
		Key: m.Key, Value: m.Value, Timestamp: m.Timestamp, Opaque: done}
	p.inflight.add()
	for {
		err := p.p.Produce(km, nil)
		if err == nil {
			return
		}
		var ke kafka.Error
		if !errors.As(err, &ke) || ke.Code() != kafka.ErrQueueFull || ctx.Err() != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			done.Done(-1, -1, err)
			p.inflight.doneOne()
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *confluentProducer) Flush(ctx context.Context) error {
	return p.inflight.waitCtx(ctx)
}

// Close purges what librdkafka still holds (those records fail with a purge error), waits
// for their reports and closes the client.
func (p *confluentProducer) Close() {
	p.once.Do(func() {
		_ = p.p.Purge(kafka.PurgeQueue | kafka.PurgeInFlight)
		ctx, cancel := context.WithTimeout(context.Background(), min(p.timeout, 10*time.Second))
		_ = p.Flush(ctx)
		cancel()
		p.p.Close()
		<-p.done
	})
}

func (p *confluentProducer) BeginTxn() error {
	if err := p.p.BeginTransaction(); err != nil {
		return fmt.Errorf("loadgen: begin transaction: %w", err)
	}
	return nil
}

// EndTxn waits for the transaction's records, then commits or aborts it. A commit that
// fails with an error librdkafka marks abortable is aborted and reported wrapping
// errTxnAborted; a retriable one is retried until ctx ends.
func (p *confluentProducer) EndTxn(ctx context.Context, commit bool) error {
	if err := p.Flush(ctx); err != nil {
		return fmt.Errorf("loadgen: flush transaction: %w", err)
	}
	if !commit {
		return p.abort(ctx)
	}
	return p.commit(ctx)
}

// commit commits the open transaction (see EndTxn).
func (p *confluentProducer) commit(ctx context.Context) error {
	for {
		err := p.p.CommitTransaction(ctx)
		if err == nil {
			return nil
		}
		var ke kafka.Error
		switch {
		case errors.As(err, &ke) && ke.TxnRequiresAbort():
			if aerr := p.abort(ctx); aerr == nil {
				return fmt.Errorf("loadgen: commit transaction: %w: %w", errTxnAborted, err)
			}
		case errors.As(err, &ke) && ke.IsRetriable() && ctx.Err() == nil:
			continue
		}
		return fmt.Errorf("loadgen: commit transaction: %w", err)
	}
}

// abort aborts the open transaction, again while librdkafka calls the error retriable.
func (p *confluentProducer) abort(ctx context.Context) error {
	for {
		err := p.p.AbortTransaction(ctx)
		var ke kafka.Error
		if err == nil || !errors.As(err, &ke) || !ke.IsRetriable() || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("loadgen: abort transaction: %w", err)
			}
			return nil
		}
	}
}

func (d *confluentDriver) NewConsumer(c ConsumerSettings) (Consumer, error) {
	return newConfluentConsumer(c)
}

// confluentConsumerConfig maps c onto librdkafka's consumer properties. librdkafka needs a
// group.id even to read assigned partitions: a consumer without a group gets one of its own
// and never commits.
func confluentConsumerConfig(c ConsumerSettings) (kafka.ConfigMap, error) {
	cm, err := confluentConfig(c.Bootstrap, c.ClientID, c.Client)
	if err != nil {
		return nil, err
	}
	group := c.Group
	if group == "" || c.FromStart {
		group = fmt.Sprintf("kchaos-nogroup-%d", time.Now().UnixNano())
	}
	wait := c.FetchMaxWait
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	cm["group.id"] = group
	cm["auto.offset.reset"] = "earliest"
	cm["enable.auto.commit"] = c.AutoCommit && c.Partitions == nil
	cm["fetch.wait.max.ms"] = int(wait.Milliseconds())
	if c.AutoCommitInterval > 0 {
		cm["auto.commit.interval.ms"] = int(c.AutoCommitInterval.Milliseconds())
	}
	if c.ReadCommitted {
		cm["isolation.level"] = "read_committed"
	} else {
		cm["isolation.level"] = "read_uncommitted"
	}
	for k, v := range map[string]int64{
		"session.timeout.ms":        c.SessionTimeout.Milliseconds(),
		"heartbeat.interval.ms":     c.HeartbeatInterval.Milliseconds(),
		"max.poll.interval.ms":      c.MaxPollInterval.Milliseconds(),
		"fetch.min.bytes":           int64(c.FetchMinBytes),
		"fetch.max.bytes":           int64(c.FetchMaxBytes),
		"max.partition.fetch.bytes": int64(c.MaxPartitionFetchBytes),
	} {
		if v > 0 {
			cm[k] = int(v)
		}
	}
	if c.InstanceID != "" {
		cm["group.instance.id"] = c.InstanceID
	}
	return cm, nil
}

func newConfluentConsumer(s ConsumerSettings) (*confluentConsumer, error) {
	cm, err := confluentConsumerConfig(s)
	if err != nil {
		return nil, err
	}
	kc, err := kafka.NewConsumer(&cm)
	if err != nil {
		return nil, fmt.Errorf("loadgen: confluent consumer: %w", err)
	}
	c := &confluentConsumer{c: kc, set: s, maxPoll: 10000}
	if s.MaxPollRecords > 0 {
		c.maxPoll = s.MaxPollRecords
	}
	if s.Partitions != nil {
		tps := make([]kafka.TopicPartition, len(s.Partitions))
		for i, p := range s.Partitions {
			tps[i] = kafka.TopicPartition{Topic: &c.set.Topic, Partition: p, Offset: kafka.OffsetBeginning}
		}
		err = kc.Assign(tps)
		c.assigned, c.changed = slices.Clone(s.Partitions), true
	} else {
		err = kc.Subscribe(s.Topic, c.rebalanced)
	}
	if err != nil {
		_ = kc.Close()
		return nil, fmt.Errorf("loadgen: confluent consumer %s: %w", s.Topic, err)
	}
	return c, nil
}

// confluentConsumer is a librdkafka consumer. Its rebalance callback runs inside Poll, on
// the polling goroutine, so its fields need no lock.
type confluentConsumer struct {
	c   *kafka.Consumer
	set ConsumerSettings
	// maxPoll bounds the records of one poll (max.poll.records); default 10000.
	maxPoll  int
	assigned []int32
	changed  bool
	// generation counts rebalances; a transformer's transaction aborts when it moved.
	generation int
}

// rebalanced is the rebalance callback: it notes the new assignment and lets librdkafka
// assign or revoke (it does when the callback does not).
func (c *confluentConsumer) rebalanced(_ *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		c.assigned = c.assigned[:0]
		for _, tp := range e.Partitions {
			c.assigned = append(c.assigned, tp.Partition)
		}
		slices.Sort(c.assigned)
	case kafka.RevokedPartitions:
		c.assigned = nil
	}
	c.changed = true
	c.generation++
	return nil
}

func (c *confluentConsumer) Poll(ctx context.Context, wait time.Duration) (Polled, error) {
	var out Polled
	deadline := time.Now().Add(wait)
	for len(out.Records) < c.maxPoll && ctx.Err() == nil {
		ms := 0
		if len(out.Records) == 0 {
			ms = int(time.Until(deadline).Milliseconds())
			if ms <= 0 {
				break
			}
		}
		ev := c.c.Poll(ms)
		if ev == nil {
			if len(out.Records) > 0 {
				break
			}
			continue
		}
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				out.Errors = append(out.Errors, ErrorName(e.TopicPartition.Error))
				continue
			}
			out.Records = append(out.Records, Fetched{Partition: e.TopicPartition.Partition, Offset: int64(e.TopicPartition.Offset), Key: e.Key, Value: e.Value})
		case kafka.Error:
			out.Errors = append(out.Errors, ErrorName(e))
		}
	}
	if c.changed {
		out.AssignmentChanged, c.changed = true, false
		out.Assignment = slices.Clone(c.assigned)
	}
	if c.c.IsClosed() {
		return out, errors.New("loadgen: poll: consumer closed")
	}
	return out, nil
}

// offsetList is offsets of the settings' topic as librdkafka takes them.
func (c *confluentConsumer) offsetList(offsets map[int32]int64) []kafka.TopicPartition {
	tps := make([]kafka.TopicPartition, 0, len(offsets))
	for _, p := range slices.Sorted(mapKeys(offsets)) {
		tps = append(tps, kafka.TopicPartition{Topic: &c.set.Topic, Partition: p, Offset: kafka.Offset(offsets[p])})
	}
	return tps
}

// Commit commits offsets synchronously: as the group member, or in assign mode under the
// group without membership (generation -1); an assign-mode consumer without a group (or the
// drain) commits nothing.
func (c *confluentConsumer) Commit(ctx context.Context, offsets map[int32]int64) error {
	if len(offsets) == 0 || (c.set.Partitions != nil && (c.set.Group == "" || c.set.FromStart)) {
		return nil
	}
	res, err := c.c.CommitOffsets(c.offsetList(offsets))
	if err != nil {
		return fmt.Errorf("loadgen: commit: %w", err)
	}
	for _, tp := range res {
		if tp.Error != nil {
			return fmt.Errorf("loadgen: commit partition %d: %w", tp.Partition, tp.Error)
		}
	}
	return ctx.Err()
}

// Close leaves the group (librdkafka commits the stored offsets first when auto-commit is
// on) and closes the client.
func (c *confluentConsumer) Close() { _ = c.c.Close() }
