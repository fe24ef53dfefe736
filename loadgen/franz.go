package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/clientconfig"
)

// franzDriver runs clients of github.com/twmb/franz-go (kgo).
type franzDriver struct {
	bootstrap []string
	admin     *kgo.Client
}

var _ Driver = (*franzDriver)(nil)

func newFranzDriver(bootstrap []string, client *clientconfig.Config) (*franzDriver, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap...)}, client.FranzOpts()...)...)
	if err != nil {
		return nil, fmt.Errorf("loadgen: franz-go admin client: %w", err)
	}
	return &franzDriver{bootstrap: bootstrap, admin: cl}, nil
}

func (d *franzDriver) Close() error { d.admin.Close(); return nil }

func (d *franzDriver) CreateTopics(ctx context.Context, topics []string, partitions int32, rf int16, configs map[string]string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, partitions, rf
		for k, v := range configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, d.admin)
	if err != nil {
		return fmt.Errorf("loadgen: create topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("loadgen: create topic %s: %w", t.Topic, err)
		}
	}
	return waitForLeaders(ctx, d.admin, topics)
}

// DeleteTopics deletes topics; a topic already gone is not an error.
func (d *franzDriver) DeleteTopics(ctx context.Context, topics []string) error {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 30000
	for _, t := range topics {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
		req.TopicNames = append(req.TopicNames, t)
	}
	resp, err := req.RequestWith(ctx, d.admin)
	if err != nil {
		return fmt.Errorf("loadgen: delete topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			return fmt.Errorf("loadgen: delete topic %s: %w", name, err)
		}
	}
	return nil
}

// waitForLeaders polls metadata until every partition of topics has a leader in the view of
// every broker, each asked on its own: a broker that has not yet learnt of a new partition
// refuses produce requests for it, and with acks=0 that refusal closes the connection and loses
// the requests behind it (as Kafka does), so producing must wait for the slowest broker.
func waitForLeaders(ctx context.Context, cl *kgo.Client, topics []string) error {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	ready := func(resp *kmsg.MetadataResponse) bool {
		for _, t := range resp.Topics {
			if t.ErrorCode != 0 || len(t.Partitions) == 0 {
				return false
			}
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 || p.Leader < 0 {
					return false
				}
			}
		}
		return len(resp.Topics) == len(topics)
	}
	for {
		resp, err := req.RequestWith(ctx, cl)
		ok := err == nil && ready(resp)
		if ok {
			for _, b := range resp.Brokers {
				r, berr := cl.Broker(int(b.NodeID)).Request(ctx, req)
				if berr != nil || !ready(r.(*kmsg.MetadataResponse)) {
					ok, err = false, berr
					break
				}
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadgen: waiting for partition leaders of %v: %w (last error: %v)", topics, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// topicPartitions returns the partitions and topic id of topic from metadata.
func topicPartitions(ctx context.Context, cl *kgo.Client, topic string) ([]int32, [16]byte, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, [16]byte{}, fmt.Errorf("loadgen: metadata %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, t.TopicID, fmt.Errorf("loadgen: metadata %s: %w", topic, err)
		}
		var ps []int32
		for _, p := range t.Partitions {
			ps = append(ps, p.Partition)
		}
		slices.Sort(ps)
		return ps, t.TopicID, nil
	}
	return nil, [16]byte{}, fmt.Errorf("loadgen: metadata %s: topic missing from response", topic)
}

func (d *franzDriver) EndOffsets(ctx context.Context, topic string, readCommitted bool) (map[int32]int64, error) {
	parts, _, err := topicPartitions(ctx, d.admin, topic)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if readCommitted {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, d.admin)
	if err != nil {
		return nil, fmt.Errorf("loadgen: list offsets %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("loadgen: list offsets %s/%d: %w", topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out, nil
}

func (d *franzDriver) NewProducer(p ProducerSettings) (Producer, error) {
	cl, err := kgo.NewClient(franzProducerOpts(p)...)
	if err != nil {
		return nil, fmt.Errorf("loadgen: franz-go producer: %w", err)
	}
	return &franzProducer{cl: cl}, nil
}

// franzRecoveryOpts make a franz-go client recover from a leader change as quickly as the
// Java client with its defaults (retry.backoff.ms=100, retry.backoff.max.ms=1000): franz-go's
// own defaults (metadata refreshed at most every 5 s, retries backing off up to 2.5 s) add
// seconds of unavailability after every leader kill that Kafka's users would not see.
func franzRecoveryOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(100*time.Millisecond<<min(tries-1, 4), time.Second)
		}),
	}
}

// franzProducerOpts are the kgo options of a producer configured from p.
func franzProducerOpts(p ProducerSettings) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(p.Bootstrap...),
		kgo.ClientID(p.ClientID),
		kgo.ProducerBatchMaxBytes(int32(p.BatchSize)),
		kgo.ProducerLinger(time.Duration(*p.Linger)),
		kgo.ProduceRequestTimeout(time.Duration(p.RequestTimeout)),
		kgo.RecordDeliveryTimeout(time.Duration(p.DeliveryTimeout)),
		kgo.RecordRetries(*p.Retries),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.MaxBufferedRecords(1 << 16),
	}
	opts = append(opts, franzRecoveryOpts()...)
	opts = append(opts, p.Client.FranzOpts()...)
	switch p.Acks {
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if !p.Idempotence {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(p.MaxInFlight))
	}
	if p.Transactional {
		opts = append(opts, kgo.TransactionalID(p.TransactionalID))
	}
	// With idempotence franz-go refuses a max in-flight setting and uses Kafka's limit of 5.
	codec := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}[p.Compression]
	return append(opts, kgo.ProducerBatchCompression(codec))
}

type franzProducer struct{ cl *kgo.Client }

var _ TxnProducer = (*franzProducer)(nil)

func (p *franzProducer) BeginTxn() error {
	if err := p.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("loadgen: begin transaction: %w", err)
	}
	return nil
}

func (p *franzProducer) EndTxn(ctx context.Context, commit bool) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("loadgen: flush transaction: %w", err)
	}
	if err := p.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		return fmt.Errorf("loadgen: end transaction: %w", err)
	}
	return nil
}

// franzRecord is a record with its outcome, in one allocation: the promise, one function
// for every record, finds the outcome from the record.
type franzRecord struct {
	kgo.Record // first: a *kgo.Record kgo hands back points at the franzRecord
	done       Outcome
}

// franzPromise passes a record's outcome on; kgo calls it for records that Send made.
func franzPromise(r *kgo.Record, err error) {
	fr := (*franzRecord)(unsafe.Pointer(r))
	if err != nil {
		fr.done.Done(r.Partition, -1, err)
		return
	}
	fr.done.Done(r.Partition, r.Offset, nil)
}

func (p *franzProducer) Send(ctx context.Context, m *Message, done Outcome) {
	fr := &franzRecord{Record: kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}, done: done}
	p.cl.Produce(ctx, &fr.Record, franzPromise)
}

func (p *franzProducer) Flush(ctx context.Context) error { return p.cl.Flush(ctx) }
func (p *franzProducer) Close()                          { p.cl.Close() }

func (d *franzDriver) NewConsumer(c ConsumerSettings) (Consumer, error) {
	fc, opts := franzConsumerOpts(c)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("loadgen: franz-go consumer: %w", err)
	}
	fc.cl = cl
	return fc, nil
}

// franzConsumerOpts returns a consumer without its client and the kgo options of its client.
func franzConsumerOpts(c ConsumerSettings) (*franzConsumer, []kgo.Opt) {
	fc := &franzConsumer{topic: c.Topic, group: c.Group, assigned: map[int32]bool{}}
	fc.maxPoll = c.MaxPollRecords
	wait := c.FetchMaxWait
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Bootstrap...),
		kgo.ClientID(c.ClientID),
		kgo.FetchMaxWait(wait),
	}
	opts = append(opts, franzRecoveryOpts()...)
	opts = append(opts, c.Client.FranzOpts()...)
	if c.FetchMinBytes > 0 {
		opts = append(opts, kgo.FetchMinBytes(c.FetchMinBytes))
	}
	if c.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(c.FetchMaxBytes))
	}
	if c.MaxPartitionFetchBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(c.MaxPartitionFetchBytes))
	}
	if c.HeartbeatInterval > 0 && c.Partitions == nil {
		opts = append(opts, kgo.HeartbeatInterval(c.HeartbeatInterval))
	}
	if c.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if c.Partitions != nil {
		offs := map[int32]kgo.Offset{}
		for _, p := range c.Partitions {
			offs[p] = kgo.NewOffset().AtStart()
			fc.assigned[p] = true
		}
		fc.changed = true
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.Topic: offs}))
	} else {
		opts = append(opts,
			kgo.ConsumeTopics(c.Topic),
			kgo.ConsumerGroup(c.Group),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(c.SessionTimeout),
			kgo.RebalanceTimeout(c.MaxPollInterval),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(fc.onAssigned),
			kgo.OnPartitionsRevoked(fc.onRevoked),
			kgo.OnPartitionsLost(fc.onRevoked),
		)
		fc.grouped = true
		if c.InstanceID != "" {
			opts = append(opts, kgo.InstanceID(c.InstanceID))
		}
		if c.AutoCommit {
			opts = append(opts, kgo.AutoCommitInterval(c.AutoCommitInterval))
		} else {
			opts = append(opts, kgo.DisableAutoCommit())
		}
	}
	return fc, opts
}

// franzConsumer is a kgo consumer; group callbacks update the assignment under mu.
type franzConsumer struct {
	cl      *kgo.Client
	topic   string
	group   string
	grouped bool
	topicID [16]byte
	// maxPoll bounds the records of one poll (max.poll.records); 0: all buffered.
	maxPoll int

	mu         sync.Mutex // guards assigned, changed, generation, member
	assigned   map[int32]bool
	changed    bool
	generation int32
	member     string
}

func (c *franzConsumer) onAssigned(_ context.Context, cl *kgo.Client, m map[string][]int32) {
	member, gen := cl.GroupMetadata()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range m[c.topic] {
		c.assigned[p] = true
	}
	c.changed, c.generation, c.member = true, gen, member
}

func (c *franzConsumer) onRevoked(_ context.Context, cl *kgo.Client, m map[string][]int32) {
	member, gen := cl.GroupMetadata()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range m[c.topic] {
		delete(c.assigned, p)
	}
	c.changed, c.generation, c.member = true, gen, member
}

func (c *franzConsumer) Poll(ctx context.Context, wait time.Duration) (Polled, error) {
	if c.grouped {
		c.cl.AllowRebalance()
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	var fs kgo.Fetches
	if c.maxPoll > 0 {
		fs = c.cl.PollRecords(pctx, c.maxPoll)
	} else {
		fs = c.cl.PollFetches(pctx)
	}
	cancel()
	var out Polled
	if fs.IsClientClosed() {
		return out, fmt.Errorf("loadgen: poll: %w", kgo.ErrClientClosed)
	}
	fs.EachError(func(_ string, _ int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		out.Errors = append(out.Errors, ErrorName(err))
	})
	fs.EachRecord(func(r *kgo.Record) {
		out.Records = append(out.Records, Fetched{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
	})
	c.mu.Lock()
	if c.changed {
		out.AssignmentChanged, c.changed = true, false
		out.Generation, out.Member = c.generation, c.member
		for p := range c.assigned {
			out.Assignment = append(out.Assignment, p)
		}
		slices.Sort(out.Assignment)
	}
	c.mu.Unlock()
	return out, nil
}

func (c *franzConsumer) Commit(ctx context.Context, offsets map[int32]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	if c.grouped {
		m := map[int32]kgo.EpochOffset{}
		for p, o := range offsets {
			m[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
		var cerr error
		c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.topic: m},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				cerr = commitError(resp, err)
			})
		return cerr
	}
	if c.group == "" {
		return nil
	}
	if c.topicID == ([16]byte{}) {
		_, id, err := topicPartitions(ctx, c.cl, c.topic)
		if err != nil {
			return err
		}
		c.topicID = id
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = c.group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = c.topic, c.topicID
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, o, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.cl)
	return commitError(resp, err)
}

func commitError(resp *kmsg.OffsetCommitResponse, err error) error {
	if err != nil {
		return fmt.Errorf("loadgen: commit: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("loadgen: commit partition %d: %w", p.Partition, err)
			}
		}
	}
	return nil
}

func (c *franzConsumer) Close() {
	if c.grouped {
		c.cl.AllowRebalance()
	}
	c.cl.Close()
}
