package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/kchaos/kchaos/clientconfig"
)

// kafkaGoDriver runs clients of github.com/segmentio/kafka-go: Writer producers, Reader
// consumers. kafka-go has neither idempotence nor transactions (workloads refuses them for
// this driver), so it is not a TransformDriver.
type kafkaGoDriver struct {
	bootstrap []string
	client    *clientconfig.Config
	admin     *kafka.Client
	dialer    *kafka.Dialer
}

var _ Driver = (*kafkaGoDriver)(nil)

func init() { driverErrors = append(driverErrors, kafkaGoErrorName) }

// kafkaGoErrorName names kafka-go's broker errors (kafka.Error, a Kafka error code; a record
// over the Writer's BatchBytes is MessageTooLargeError, which unwraps to
// MESSAGE_TOO_LARGE).
func kafkaGoErrorName(err error) (string, bool) {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return kafkaErrorName(int16(ke)), true
	}
	return "", false
}

// kafkaGoAdminMetadataTTL is how stale the admin client's cached metadata may be: kafka-go
// answers metadata from a cache refreshed every MetadataTTL (default 6s), and end offsets
// asked of a partition's old leader fail until it is refreshed.
const kafkaGoAdminMetadataTTL = time.Second

// kafkaGoTransport is a kafka-go Transport connecting as client says, named clientID.
func kafkaGoTransport(client *clientconfig.Config, clientID string) (*kafka.Transport, error) {
	tc, mech, err := client.KafkaGo()
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return &kafka.Transport{TLS: tc, SASL: mech, ClientID: clientID}, nil
}

// kafkaGoDialer is a kafka-go Dialer (what Readers and Conns connect with) connecting as
// client says, named clientID.
func kafkaGoDialer(client *clientconfig.Config, clientID string) (*kafka.Dialer, error) {
	tc, mech, err := client.KafkaGo()
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return &kafka.Dialer{ClientID: clientID, Timeout: 10 * time.Second, DualStack: true, TLS: tc, SASLMechanism: mech}, nil
}

func newKafkaGoDriver(bootstrap []string, client *clientconfig.Config) (*kafkaGoDriver, error) {
	tr, err := kafkaGoTransport(client, "kchaos-admin")
	if err != nil {
		return nil, err
	}
	tr.MetadataTTL = kafkaGoAdminMetadataTTL
	dialer, err := kafkaGoDialer(client, "kchaos-admin")
	if err != nil {
		return nil, err
	}
	return &kafkaGoDriver{bootstrap: bootstrap, client: client, dialer: dialer,
		admin: &kafka.Client{Addr: kafka.TCP(bootstrap...), Transport: tr, Timeout: 30 * time.Second}}, nil
}

func (d *kafkaGoDriver) Close() error {
	d.admin.Transport.(*kafka.Transport).CloseIdleConnections()
	return nil
}

func (d *kafkaGoDriver) CreateTopics(ctx context.Context, topics []string, partitions int32, rf int16, configs map[string]string) error {
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		tc := kafka.TopicConfig{Topic: t, NumPartitions: int(partitions), ReplicationFactor: int(rf)}
		for k, v := range configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := d.admin.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("loadgen: create topics: %w", err)
	}
	for _, t := range topics {
		if err := resp.Errors[t]; err != nil {
			return fmt.Errorf("loadgen: create topic %s: %w", t, err)
		}
	}
	return d.waitForLeaders(ctx, topics, int(partitions))
}

// waitForLeaders asks every broker, each on its own connection (the Client answers metadata
// from its cache), until each knows a leader for every partition of topics (see
// waitForLeaders in franz.go for why every broker).
func (d *kafkaGoDriver) waitForLeaders(ctx context.Context, topics []string, partitions int) error {
	ready := func(addr string) error {
		conn, err := d.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		ps, err := conn.ReadPartitions(topics...)
		if err != nil {
			return err
		}
		if len(ps) != partitions*len(topics) {
			return fmt.Errorf("%d partitions of %d", len(ps), partitions*len(topics))
		}
		for _, p := range ps {
			if p.Error != nil {
				return p.Error
			}
		}
		return nil
	}
	var last error
	for {
		meta, err := d.admin.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		last = err
		if err == nil {
			for _, b := range meta.Brokers {
				if last = ready(net.JoinHostPort(b.Host, fmt.Sprint(b.Port))); last != nil {
					break
				}
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadgen: waiting for partition leaders of %v: %w (last error: %v)", topics, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DeleteTopics deletes topics; a topic that does not exist is not an error.
func (d *kafkaGoDriver) DeleteTopics(ctx context.Context, topics []string) error {
	resp, err := d.admin.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("loadgen: delete topics: %w", err)
	}
	for t, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			return fmt.Errorf("loadgen: delete topic %s: %w", t, err)
		}
	}
	return nil
}

// EndOffsets asks for each partition's end offset, again until ctx ends while the admin
// client's metadata still names a partition's old leader.
func (d *kafkaGoDriver) EndOffsets(ctx context.Context, topic string, readCommitted bool) (map[int32]int64, error) {
	for {
		out, err := d.endOffsets(ctx, topic, readCommitted)
		if err == nil {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *kafkaGoDriver) endOffsets(ctx context.Context, topic string, readCommitted bool) (map[int32]int64, error) {
	meta, err := d.admin.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("loadgen: metadata %s: %w", topic, err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	if readCommitted {
		req.IsolationLevel = kafka.ReadCommitted
	}
	for _, t := range meta.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("loadgen: metadata %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p.ID))
		}
	}
	if len(req.Topics[topic]) == 0 {
		return nil, fmt.Errorf("loadgen: metadata %s: %w", topic, kafka.UnknownTopicOrPartition)
	}
	resp, err := d.admin.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("loadgen: list offsets %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("loadgen: list offsets %s/%d: %w", topic, p.Partition, p.Error)
		}
		out[int32(p.Partition)] = p.LastOffset
	}
	return out, nil
}

// kafkaGoMaxBuffered bounds the records a kafka-go producer holds without an outcome: the
// async Writer buffers without limit, so Send blocks at this many, as a full buffer blocks
// the other clients (franz-go's MaxBufferedRecords is the same).
const kafkaGoMaxBuffered = 1 << 16

// kafkaGoDefaultRetries is Kafka's default retries (retry until delivery.timeout.ms), which
// kafka-go cannot express: with it the Writer keeps its own retry policy, MaxAttempts 10
// with backoff from 100ms to 1s.
const kafkaGoDefaultRetries = 2147483647

func (d *kafkaGoDriver) NewProducer(p ProducerSettings) (Producer, error) {
	w, err := kafkaGoWriter(p)
	if err != nil {
		return nil, err
	}
	kp := &kafkaGoProducer{w: w, timer: time.NewTimer(time.Hour)}
	kp.flight.initRoom()
	w.Completion = kp.complete
	return kp, nil
}

// kafkaGoWriter is the async Writer of a producer configured from p, without its
// Completion and batch record count (see kafkaGoProducer.Send). batch.size is the Writer's
// BatchBytes, linger its BatchTimeout (kafka-go's 0 means 1s, so linger 0 is 1ns),
// request.timeout its read and write timeouts, retries its MaxAttempts (Kafka's default
// leaves the Writer's own, see kafkaGoDefaultRetries); keys go to partitions by murmur2, as
// Java's default partitioner places them.
func kafkaGoWriter(p ProducerSettings) (*kafka.Writer, error) {
	tr, err := kafkaGoTransport(p.Client, p.ClientID)
	if err != nil {
		return nil, err
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(p.Bootstrap...),
		Balancer:     &kafka.Murmur2Balancer{},
		BatchBytes:   int64(p.BatchSize),
		BatchTimeout: max(time.Duration(*p.Linger), time.Nanosecond),
		ReadTimeout:  time.Duration(p.RequestTimeout),
		WriteTimeout: time.Duration(p.RequestTimeout),
		Async:        true,
		Transport:    tr,
		Compression: map[string]kafka.Compression{"gzip": kafka.Gzip, "snappy": kafka.Snappy,
			"lz4": kafka.Lz4, "zstd": kafka.Zstd}[p.Compression],
	}
	if *p.Retries != kafkaGoDefaultRetries {
		w.MaxAttempts = min(*p.Retries, 1<<20) + 1
	}
	switch p.Acks {
	case "0":
		w.RequiredAcks = kafka.RequireNone
	case "1":
		w.RequiredAcks = kafka.RequireOne
	default:
		w.RequiredAcks = kafka.RequireAll
	}
	return w, nil
}

// kafkaGoProducer is an async kafka-go Writer; each message carries its Outcome in
// WriterData and the Writer's Completion passes the outcomes on.
type kafkaGoProducer struct {
	w      *kafka.Writer
	once   sync.Once
	flight inflight
	timer  *time.Timer // waitRoom's; Send is called from one goroutine
}

var _ Producer = (*kafkaGoProducer)(nil)

// Send hands m to the Writer. The first record sizes the Writer's batches in records
// (BatchSize, default 100): enough that BatchBytes (batch.size) fills a batch first, as in
// Kafka, whose batches have no record limit.
func (p *kafkaGoProducer) Send(ctx context.Context, m *Message, done Outcome) {
	p.once.Do(func() { p.w.BatchSize = int(p.w.BatchBytes)/max(1, len(m.Key)+len(m.Value)) + 1 })
	for p.flight.outstanding() >= kafkaGoMaxBuffered {
		p.timer.Reset(time.Second)
		if !p.flight.waitRoom(ctx, kafkaGoMaxBuffered, p.timer) && ctx.Err() != nil {
			done.Done(-1, -1, ctx.Err())
			return
		}
	}
	p.flight.add()
	err := p.w.WriteMessages(ctx, kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Time: m.Timestamp, WriterData: done})
	if err != nil {
		// Refused before it was queued: an unknown topic, a record over BatchBytes.
		done.Done(-1, -1, err)
		p.flight.doneOne()
	}
}

// complete is the Writer's Completion: one batch's outcome.
func (p *kafkaGoProducer) complete(msgs []kafka.Message, err error) {
	for i := range msgs {
		m := &msgs[i]
		if err != nil {
			m.WriterData.(Outcome).Done(int32(m.Partition), -1, err)
		} else {
			m.WriterData.(Outcome).Done(int32(m.Partition), m.Offset, nil)
		}
		p.flight.doneOne()
	}
}

func (p *kafkaGoProducer) Flush(ctx context.Context) error {
	return p.flight.waitCtx(ctx)
}

// Close closes the Writer, which first writes what it holds (kafka-go has no way to drop
// buffered records), and its Transport's connections.
func (p *kafkaGoProducer) Close() {
	_ = p.w.Close()
	p.w.Transport.(*kafka.Transport).CloseIdleConnections()
}

func (d *kafkaGoDriver) NewConsumer(c ConsumerSettings) (Consumer, error) {
	return newKafkaGoConsumer(c)
}

// kafkaGoConsumer adapts kafka-go Readers to Poll: a goroutine per Reader fetches messages
// into msgs. Through a group there is one Reader (GroupID set); assigned partitions have a
// Reader each, which kafka-go needs (a Reader without a group reads one partition).
type kafkaGoConsumer struct {
	set     ConsumerSettings
	readers []*kafka.Reader
	grouped bool
	// maxPoll bounds the records of one poll (max.poll.records); default 10000.
	maxPoll int
	msgs    chan kafka.Message
	errs    chan error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// commitClient commits for an assign-mode consumer with a group (generation -1).
	commitClient *kafka.Client

	mu       sync.Mutex // guards assigned, changed
	assigned []int32
	changed  bool
}

func newKafkaGoConsumer(s ConsumerSettings) (*kafkaGoConsumer, error) {
	dialer, err := kafkaGoDialer(s.Client, s.ClientID)
	if err != nil {
		return nil, err
	}
	c := &kafkaGoConsumer{set: s, msgs: make(chan kafka.Message, 4096), errs: make(chan error, 64), maxPoll: 10000}
	if s.MaxPollRecords > 0 {
		c.maxPoll = s.MaxPollRecords
	}
	cfg := kafka.ReaderConfig{
		Brokers: s.Bootstrap, Topic: s.Topic, Dialer: dialer, MinBytes: int(s.FetchMinBytes),
		MaxWait: s.FetchMaxWait, StartOffset: kafka.FirstOffset, ReadLagInterval: -1,
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 100 * time.Millisecond
	}
	// kafka-go fetches each partition on its own: one limit stands for both of Kafka's.
	if lim := min(positive(s.FetchMaxBytes), positive(s.MaxPartitionFetchBytes)); lim > 0 {
		cfg.MaxBytes = int(lim)
	}
	if cfg.MinBytes > 0 && cfg.MaxBytes == 0 {
		cfg.MaxBytes = max(cfg.MinBytes, 1e6)
	}
	if s.ReadCommitted {
		cfg.IsolationLevel = kafka.ReadCommitted
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if s.Partitions != nil {
		for _, p := range s.Partitions {
			pc := cfg
			pc.Partition = int(p)
			c.readers = append(c.readers, kafka.NewReader(pc))
		}
		c.assigned, c.changed = slices.Clone(s.Partitions), true
		if s.Group != "" && !s.FromStart {
			tr, err := kafkaGoTransport(s.Client, s.ClientID)
			if err != nil {
				cancel()
				return nil, err
			}
			c.commitClient = &kafka.Client{Addr: kafka.TCP(s.Bootstrap...), Transport: tr, Timeout: 10 * time.Second}
		}
	} else {
		cfg.GroupID, c.grouped = s.Group, true
		cfg.SessionTimeout, cfg.HeartbeatInterval, cfg.RebalanceTimeout = s.SessionTimeout, s.HeartbeatInterval, s.MaxPollInterval
		if s.AutoCommit {
			// The Reader's auto-commit: offsets handed to the application are committed every
			// CommitInterval (Poll hands them over as ReadMessage would).
			cfg.CommitInterval = s.AutoCommitInterval
		}
		cfg.Logger = kafka.LoggerFunc(c.readerLog)
		c.readers = append(c.readers, kafka.NewReader(cfg))
	}
	for _, r := range c.readers {
		c.wg.Add(1)
		go c.fetch(ctx, r)
	}
	return c, nil
}

// positive returns v, or 0 when it is not above 0.
func positive(v int32) int32 { return max(v, 0) }

// fetch moves r's messages into msgs until ctx ends or r is closed.
func (c *kafkaGoConsumer) fetch(ctx context.Context, r *kafka.Reader) {
	defer c.wg.Done()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			select {
			case c.errs <- err:
			default:
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case c.msgs <- m:
		case <-ctx.Done():
			return
		}
	}
}

// kafkaGoSubscribed is the format of the group Reader's log line that lists a new
// generation's assignment; kafkaGoGenerationEnd the line that ends a generation. The
// Reader has no other way to tell its assignment (kafka-go v0.4.51, reader.go).
const (
	kafkaGoSubscribed    = "subscribed to topics and partitions: %+v"
	kafkaGoGenerationEnd = "stopped commit for group %s\n"
)

// readerLog reads the group Reader's log for assignment changes.
func (c *kafkaGoConsumer) readerLog(format string, args ...any) {
	switch {
	case format == kafkaGoSubscribed && len(args) == 1:
		parts := subscribedPartitions(args[0], c.set.Topic)
		c.mu.Lock()
		c.assigned, c.changed = parts, true
		c.mu.Unlock()
	case format == kafkaGoGenerationEnd:
		c.mu.Lock()
		c.assigned, c.changed = nil, true
		c.mu.Unlock()
	}
}

func (c *kafkaGoConsumer) Poll(ctx context.Context, wait time.Duration) (Polled, error) {
	var out Polled
	var last map[int32]kafka.Message
	pollChan(ctx, c.msgs, wait, c.maxPoll, func(m kafka.Message) {
		out.Records = append(out.Records, Fetched{Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value})
		if c.grouped && c.set.AutoCommit {
			if last == nil {
				last = map[int32]kafka.Message{}
			}
			last[int32(m.Partition)] = m
		}
	})
	if len(last) > 0 {
		// What ReadMessage does after each fetch: queue the offsets for the next interval's
		// commit (CommitInterval set: CommitMessages does not wait).
		// Between generations nothing takes commits: wait a second at most, a later poll's
		// commit covers this one's.
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := c.readers[0].CommitMessages(cctx, slices.Collect(mapValues(last))...); err != nil {
			out.Errors = append(out.Errors, ErrorName(err))
		}
		cancel()
	}
	for len(c.errs) > 0 {
		out.Errors = append(out.Errors, ErrorName(<-c.errs))
	}
	c.mu.Lock()
	if c.changed {
		out.AssignmentChanged, c.changed = true, false
		out.Assignment = slices.Clone(c.assigned)
	}
	c.mu.Unlock()
	return out, nil
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// Commit commits offsets (the next offsets to read): through the group Reader, which
// commits the offset after a message's, and waits for the commit (CommitInterval 0); in
// assign mode with a group, as an OffsetCommit with generation -1.
func (c *kafkaGoConsumer) Commit(ctx context.Context, offsets map[int32]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	if c.grouped {
		msgs := make([]kafka.Message, 0, len(offsets))
		for p, o := range offsets {
			msgs = append(msgs, kafka.Message{Topic: c.set.Topic, Partition: int(p), Offset: o - 1})
		}
		if err := c.readers[0].CommitMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("loadgen: commit: %w", err)
		}
		return nil
	}
	if c.commitClient == nil {
		return nil
	}
	req := &kafka.OffsetCommitRequest{GroupID: c.set.Group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{}}
	for p, o := range offsets {
		req.Topics[c.set.Topic] = append(req.Topics[c.set.Topic], kafka.OffsetCommit{Partition: int(p), Offset: o})
	}
	resp, err := c.commitClient.OffsetCommit(ctx, req)
	if err != nil {
		return fmt.Errorf("loadgen: commit: %w", err)
	}
	for _, p := range resp.Topics[c.set.Topic] {
		if p.Error != nil {
			return fmt.Errorf("loadgen: commit partition %d: %w", p.Partition, p.Error)
		}
	}
	return nil
}

// Close closes the Readers: a group Reader commits what auto-commit holds and leaves the
// group.
func (c *kafkaGoConsumer) Close() {
	c.cancel()
	waitDraining(&c.wg, c.msgs)
	for _, r := range c.readers {
		_ = r.Close()
	}
	if c.commitClient != nil {
		c.commitClient.Transport.(*kafka.Transport).CloseIdleConnections()
	}
}

// subscribedPartitions returns the partitions of topic in the argument of the group
// Reader's kafkaGoSubscribed log line: a map keyed by kafka-go's unexported
// topicPartition{topic, partition}, read by reflection.
func subscribedPartitions(arg any, topic string) []int32 {
	v := reflect.ValueOf(arg)
	if v.Kind() != reflect.Map {
		return nil
	}
	out := []int32{}
	for _, k := range v.MapKeys() {
		if k.Kind() != reflect.Struct {
			continue
		}
		t, p := k.FieldByName("topic"), k.FieldByName("partition")
		if t.Kind() == reflect.String && p.CanInt() && t.String() == topic {
			out = append(out, int32(p.Int()))
		}
	}
	slices.Sort(out)
	return out
}

// pollChan takes from ch what a poll returns: it waits up to wait (or until ctx ends) for
// the first item, then takes what is there without waiting, max items in all, each passed
// to add. The Sarama and kafka-go consumers, whose clients push records, poll this way.
func pollChan[T any](ctx context.Context, ch <-chan T, wait time.Duration, max int, add func(T)) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m := <-ch:
		add(m)
		for n := 1; n < max; n++ {
			select {
			case m := <-ch:
				add(m)
			default:
				return
			}
		}
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitDraining waits for wg while discarding what arrives on ch, so goroutines blocked
// sending to ch can see that they must stop.
func waitDraining[T any](wg *sync.WaitGroup, ch <-chan T) {
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
			case <-stop:
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
}
