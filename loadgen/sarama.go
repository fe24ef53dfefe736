package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/kchaos/kchaos/clientconfig"
)

// SaramaVersion is the Kafka protocol version the Sarama driver speaks; default 2.8.0
// (Sarama's default), which supports idempotence, zstd and static membership.
var SaramaVersion = sarama.V2_8_0_0

// SaramaMaxRetries caps producer retries for Sarama; default 1000 (at Sarama's 100ms
// backoff, well beyond Kafka's 2-minute delivery timeout).
const SaramaMaxRetries = 1000

// saramaDriver runs clients of github.com/IBM/sarama.
type saramaDriver struct {
	bootstrap []string
	client    sarama.Client
}

var _ Driver = (*saramaDriver)(nil)

// saramaConfig is the base configuration of every Sarama client: version, client id, and
// TLS and SASL as client says (nil: plaintext).
func saramaConfig(clientID string, client *clientconfig.Config) (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	cfg.Version = SaramaVersion
	if clientID != "" {
		cfg.ClientID = clientID
	}
	cfg.Metadata.RefreshFrequency = 10 * time.Second
	if err := client.ApplySarama(cfg); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return cfg, nil
}

func newSaramaDriver(bootstrap []string, client *clientconfig.Config) (*saramaDriver, error) {
	cfg, err := saramaConfig("kchaos-admin", client)
	if err != nil {
		return nil, err
	}
	cl, err := sarama.NewClient(bootstrap, cfg)
	if err != nil {
		return nil, fmt.Errorf("loadgen: sarama admin client: %w", err)
	}
	return &saramaDriver{bootstrap: bootstrap, client: cl}, nil
}

func (d *saramaDriver) Close() error { return d.client.Close() }

// DeleteTopics deletes topics; a topic already gone is not an error.
func (d *saramaDriver) DeleteTopics(ctx context.Context, topics []string) error {
	admin, err := sarama.NewClusterAdminFromClient(d.client)
	if err != nil {
		return fmt.Errorf("loadgen: sarama admin: %w", err)
	}
	for _, t := range topics {
		if err := admin.DeleteTopic(t); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return fmt.Errorf("loadgen: delete topic %s: %w", t, err)
		}
	}
	return nil
}

func (d *saramaDriver) CreateTopics(ctx context.Context, topics []string, partitions int32, rf int16, configs map[string]string) error {
	admin, err := sarama.NewClusterAdminFromClient(d.client)
	if err != nil {
		return fmt.Errorf("loadgen: sarama admin: %w", err)
	}
	entries := map[string]*string{}
	for k, v := range configs {
		entries[k] = &v
	}
	for _, t := range topics {
		detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: rf, ConfigEntries: entries}
		if err := admin.CreateTopic(t, detail, false); err != nil {
			return fmt.Errorf("loadgen: create topic %s: %w", t, err)
		}
	}
	for {
		ready := true
		if err := d.client.RefreshMetadata(topics...); err != nil {
			ready = false
		}
		for _, t := range topics {
			ps, err := d.client.Partitions(t)
			if err != nil || len(ps) != int(partitions) {
				ready = false
				continue
			}
			for _, p := range ps {
				if _, err := d.client.Leader(t, p); err != nil {
					ready = false
				}
			}
		}
		// Every broker must know the leaders too (see waitForLeaders).
		for _, b := range d.client.Brokers() {
			if !ready {
				break
			}
			_ = b.Open(d.client.Config())
			resp, err := b.GetMetadata(&sarama.MetadataRequest{Version: 1, Topics: topics})
			if err != nil || len(resp.Topics) != len(topics) {
				ready = false
				break
			}
			for _, t := range resp.Topics {
				if t.Err != sarama.ErrNoError || len(t.Partitions) != int(partitions) {
					ready = false
				}
				for _, p := range t.Partitions {
					if p.Err != sarama.ErrNoError || p.Leader < 0 {
						ready = false
					}
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadgen: waiting for partition leaders of %v: %w", topics, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// EndOffsets returns high watermarks: Sarama's offset lookup has no isolation level, so
// read_committed gets the high watermark, not the last stable offset.
func (d *saramaDriver) EndOffsets(ctx context.Context, topic string, _ bool) (map[int32]int64, error) {
	if err := d.client.RefreshMetadata(topic); err != nil {
		return nil, fmt.Errorf("loadgen: metadata %s: %w", topic, err)
	}
	ps, err := d.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("loadgen: partitions of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, p := range ps {
		o, err := d.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("loadgen: list offsets %s/%d: %w", topic, p, err)
		}
		out[p] = o
	}
	return out, ctx.Err()
}

func (d *saramaDriver) NewProducer(p ProducerSettings) (Producer, error) {
	cfg, err := saramaProducerConfig(p)
	if err != nil {
		return nil, err
	}
	ap, err := sarama.NewAsyncProducer(p.Bootstrap, cfg)
	if err != nil {
		return nil, fmt.Errorf("loadgen: sarama producer: %w", err)
	}
	sp := &saramaProducer{ap: ap, done: make(chan struct{})}
	sp.wg.Add(2)
	go sp.successes()
	go sp.errors()
	return sp, nil
}

// saramaProducerConfig is the Sarama configuration of a producer configured from p.
func saramaProducerConfig(p ProducerSettings) (*sarama.Config, error) {
	cfg, err := saramaConfig(p.ClientID, p.Client)
	if err != nil {
		return nil, err
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	switch p.Acks {
	case "0":
		cfg.Producer.RequiredAcks = sarama.NoResponse
	case "1":
		cfg.Producer.RequiredAcks = sarama.WaitForLocal
	default:
		cfg.Producer.RequiredAcks = sarama.WaitForAll
	}
	cfg.Producer.Flush.Bytes = int(p.BatchSize)
	cfg.Producer.Flush.Frequency = time.Duration(*p.Linger)
	cfg.Producer.Timeout = time.Duration(p.RequestTimeout)
	// Sarama keeps per-partition state for every retry level, so Kafka's default
	// (2147483647) is capped at SaramaMaxRetries.
	cfg.Producer.Retry.Max = min(*p.Retries, SaramaMaxRetries)
	cfg.Producer.Idempotent = p.Idempotence || p.Transactional
	cfg.Net.MaxOpenRequests = p.MaxInFlight
	if cfg.Producer.Idempotent {
		// Sarama's idempotent producer supports one open request per broker only, and
		// needs acks=all and at least one retry (validation guarantees both).
		cfg.Net.MaxOpenRequests = 1
	}
	if p.Transactional {
		cfg.Producer.Transaction.ID = p.TransactionalID
	}
	cfg.ChannelBufferSize = 4096
	cfg.Producer.Compression = map[string]sarama.CompressionCodec{
		"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	}[p.Compression]
	return cfg, nil
}

// saramaProducer wraps an AsyncProducer; each message carries its Outcome in Metadata.
// Transactions are the AsyncProducer's (Producer.Transaction.ID set).
type saramaProducer struct {
	ap       sarama.AsyncProducer
	inflight inflight // for Flush
	wg       sync.WaitGroup
	done     chan struct{}
	once     sync.Once
}

var _ TxnProducer = (*saramaProducer)(nil)

func (p *saramaProducer) BeginTxn() error {
	if err := p.ap.BeginTxn(); err != nil {
		return fmt.Errorf("loadgen: begin transaction: %w", err)
	}
	return nil
}

// EndTxn waits for the transaction's records, then commits or aborts it. A commit that
// fails with an abortable error is aborted and reported as an error wrapping
// errTxnAborted.
func (p *saramaProducer) EndTxn(ctx context.Context, commit bool) error {
	if err := p.Flush(ctx); err != nil {
		return fmt.Errorf("loadgen: flush transaction: %w", err)
	}
	if !commit {
		if err := p.ap.AbortTxn(); err != nil {
			return fmt.Errorf("loadgen: abort transaction: %w", err)
		}
		return nil
	}
	if err := p.ap.CommitTxn(); err != nil {
		if p.ap.TxnStatus()&sarama.ProducerTxnFlagAbortableError != 0 {
			if aerr := p.ap.AbortTxn(); aerr == nil {
				return fmt.Errorf("loadgen: commit transaction: %w: %w", errTxnAborted, err)
			}
		}
		return fmt.Errorf("loadgen: commit transaction: %w", err)
	}
	return nil
}

// errTxnAborted reports a transaction that was aborted instead of committed.
var errTxnAborted = errors.New("transaction aborted")

func (p *saramaProducer) successes() {
	defer p.wg.Done()
	for m := range p.ap.Successes() {
		m.Metadata.(Outcome).Done(m.Partition, m.Offset, nil)
		p.inflight.doneOne()
	}
}

func (p *saramaProducer) errors() {
	defer p.wg.Done()
	for e := range p.ap.Errors() {
		e.Msg.Metadata.(Outcome).Done(e.Msg.Partition, -1, e.Err)
		p.inflight.doneOne()
	}
}

func (p *saramaProducer) Send(ctx context.Context, m *Message, done Outcome) {
	pm := &sarama.ProducerMessage{Topic: m.Topic, Value: sarama.ByteEncoder(m.Value), Timestamp: m.Timestamp, Metadata: done}
	if m.Key != nil {
		pm.Key = sarama.ByteEncoder(m.Key)
	}
	p.inflight.add()
	select {
	case p.ap.Input() <- pm:
	case <-ctx.Done():
		done.Done(-1, -1, ctx.Err())
		p.inflight.doneOne()
	}
}

func (p *saramaProducer) Flush(ctx context.Context) error {
	return p.inflight.waitCtx(ctx)
}

// saramaCloseTimeout bounds how long Close waits for Sarama to hand back what it holds:
// after broker restarts with several requests in flight an AsyncProducer can hold records it
// never reports, and then never closes.
const saramaCloseTimeout = 10 * time.Second

func (p *saramaProducer) Close() {
	p.once.Do(func() {
		p.ap.AsyncClose()
		done := make(chan struct{})
		go func() { p.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(saramaCloseTimeout):
		}
	})
}

func (d *saramaDriver) NewConsumer(c ConsumerSettings) (Consumer, error) {
	cfg, err := saramaConfig(c.ClientID, c.Client)
	if err != nil {
		return nil, err
	}
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	if c.FetchMaxWait > 0 {
		cfg.Consumer.MaxWaitTime = c.FetchMaxWait
	}
	if c.FetchMinBytes > 0 {
		cfg.Consumer.Fetch.Min = c.FetchMinBytes
	}
	if c.FetchMaxBytes > 0 {
		cfg.Consumer.Fetch.Max = c.FetchMaxBytes
	}
	if c.MaxPartitionFetchBytes > 0 {
		cfg.Consumer.Fetch.Default = c.MaxPartitionFetchBytes
	}
	cfg.Consumer.Offsets.AutoCommit.Enable = c.AutoCommit
	if c.AutoCommitInterval > 0 {
		cfg.Consumer.Offsets.AutoCommit.Interval = c.AutoCommitInterval
	}
	if c.ReadCommitted {
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	if c.SessionTimeout > 0 {
		cfg.Consumer.Group.Session.Timeout = c.SessionTimeout
		cfg.Consumer.Group.Heartbeat.Interval = c.SessionTimeout / 10
	}
	if c.HeartbeatInterval > 0 {
		cfg.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	}
	if c.MaxPollInterval > 0 {
		cfg.Consumer.Group.Rebalance.Timeout = c.MaxPollInterval
	}
	cfg.Consumer.Group.InstanceId = c.InstanceID
	sc := &saramaConsumer{topic: c.Topic, auto: c.AutoCommit, msgs: make(chan *sarama.ConsumerMessage, 4096), errs: make(chan error, 64), maxPoll: 10000}
	if c.MaxPollRecords > 0 {
		sc.maxPoll = c.MaxPollRecords
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc.cancel = cancel
	if c.Partitions != nil {
		return sc, sc.startAssigned(ctx, c, cfg)
	}
	cg, err := sarama.NewConsumerGroup(c.Bootstrap, c.Group, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("loadgen: sarama consumer group: %w", err)
	}
	sc.group = cg
	sc.wg.Add(2)
	go func() {
		defer sc.wg.Done()
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{c.Topic}, sc); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				sc.pushErr(err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	go func() {
		defer sc.wg.Done()
		for err := range cg.Errors() {
			sc.pushErr(err)
		}
	}()
	return sc, nil
}

// saramaConsumer adapts Sarama's push-style consumers to Poll: claims and partition
// consumers push messages into msgs.
type saramaConsumer struct {
	topic string
	auto  bool
	// maxPoll bounds the records of one poll (max.poll.records); default 10000.
	maxPoll int
	msgs    chan *sarama.ConsumerMessage
	errs    chan error
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	group sarama.ConsumerGroup
	// assign mode
	client   sarama.Client
	consumer sarama.Consumer
	// commitGroup is the group assign mode commits under (generation -1); empty: none.
	commitGroup string
	cfg         *sarama.Config
	pcs         []sarama.PartitionConsumer

	mu         sync.Mutex // guards sess, assigned, changed, generation, member
	sess       sarama.ConsumerGroupSession
	assigned   []int32
	changed    bool
	generation int32
	member     string
}

func (c *saramaConsumer) pushErr(err error) {
	select {
	case c.errs <- err:
	default:
	}
}

func (c *saramaConsumer) startAssigned(ctx context.Context, s ConsumerSettings, cfg *sarama.Config) error {
	cl, err := sarama.NewClient(s.Bootstrap, cfg)
	if err != nil {
		return fmt.Errorf("loadgen: sarama client: %w", err)
	}
	c.client = cl
	if c.consumer, err = sarama.NewConsumerFromClient(cl); err != nil {
		return fmt.Errorf("loadgen: sarama consumer: %w", err)
	}
	if s.Group != "" && !s.FromStart {
		c.commitGroup, c.cfg = s.Group, cfg
	}
	for _, p := range s.Partitions {
		start := sarama.OffsetOldest
		pc, err := c.consumer.ConsumePartition(s.Topic, p, start)
		if err != nil {
			return fmt.Errorf("loadgen: sarama consume %s/%d: %w", s.Topic, p, err)
		}
		c.wg.Add(2)
		go func() {
			defer c.wg.Done()
			for m := range pc.Messages() {
				select {
				case c.msgs <- m:
				case <-ctx.Done():
				}
			}
		}()
		go func() {
			defer c.wg.Done()
			for e := range pc.Errors() {
				c.pushErr(e)
			}
		}()
		c.pcs = append(c.pcs, pc)
	}
	c.assigned, c.changed = slices.Clone(s.Partitions), true
	return nil
}

// Setup implements sarama.ConsumerGroupHandler: a new generation's assignment.
func (c *saramaConsumer) Setup(sess sarama.ConsumerGroupSession) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess = sess
	c.assigned = slices.Clone(sess.Claims()[c.topic])
	slices.Sort(c.assigned)
	c.changed, c.generation, c.member = true, sess.GenerationID(), sess.MemberID()
	return nil
}

// Cleanup implements sarama.ConsumerGroupHandler: the generation ended.
func (c *saramaConsumer) Cleanup(sarama.ConsumerGroupSession) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess = nil
	c.assigned, c.changed = nil, true
	return nil
}

// ConsumeClaim implements sarama.ConsumerGroupHandler: forward one partition's messages.
func (c *saramaConsumer) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case c.msgs <- m:
			case <-sess.Context().Done():
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (c *saramaConsumer) Poll(ctx context.Context, wait time.Duration) (Polled, error) {
	var out Polled
	pollChan(ctx, c.msgs, wait, c.maxPoll, func(m *sarama.ConsumerMessage) {
		out.Records = append(out.Records, Fetched{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value})
	})
	for len(c.errs) > 0 {
		out.Errors = append(out.Errors, ErrorName(<-c.errs))
	}
	c.mu.Lock()
	if c.auto && c.sess != nil && len(out.Records) > 0 {
		last := map[int32]int64{}
		for _, r := range out.Records {
			last[r.Partition] = r.Offset + 1
		}
		for p, o := range last {
			c.sess.MarkOffset(c.topic, p, o, "")
		}
	}
	if c.changed {
		out.AssignmentChanged, c.changed = true, false
		out.Assignment = slices.Clone(c.assigned)
		out.Generation, out.Member = c.generation, c.member
	}
	c.mu.Unlock()
	return out, nil
}

func (c *saramaConsumer) Commit(ctx context.Context, offsets map[int32]int64) error {
	if c.client != nil {
		if c.commitGroup == "" {
			return nil
		}
		return c.commitAssigned(offsets)
	}
	c.mu.Lock()
	sess := c.sess
	c.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("loadgen: commit: %w", sarama.ErrRebalanceInProgress)
	}
	for p, o := range offsets {
		sess.MarkOffset(c.topic, p, o, "")
	}
	sess.Commit()
	return ctx.Err()
}

func (c *saramaConsumer) Close() {
	c.cancel()
	if c.group != nil {
		_ = c.group.Close()
	}
	for _, pc := range c.pcs {
		pc.AsyncClose()
	}
	waitDraining(&c.wg, c.msgs)
	if c.consumer != nil {
		_ = c.consumer.Close()
	}
	if c.client != nil {
		_ = c.client.Close()
	}
}

// commitAssigned commits offsets for a consumer without group membership (generation -1),
// as Kafka's assign()-mode consumers do.
func (c *saramaConsumer) commitAssigned(offsets map[int32]int64) error {
	coord, err := c.client.Coordinator(c.commitGroup)
	if err != nil {
		return fmt.Errorf("loadgen: commit: coordinator of %s: %w", c.commitGroup, err)
	}
	req := sarama.NewOffsetCommitRequest(c.cfg, c.commitGroup)
	for p, o := range offsets {
		req.AddBlock(c.topic, p, o, 0, "")
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		return fmt.Errorf("loadgen: commit: %w", err)
	}
	for p, kerr := range resp.Errors[c.topic] {
		if kerr != sarama.ErrNoError {
			return fmt.Errorf("loadgen: commit partition %d: %w", p, kerr)
		}
	}
	return nil
}
