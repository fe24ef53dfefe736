package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/clustertest"
)

func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }

// ack is one acknowledged record: its value and the offset the broker gave it.
type ack struct {
	value  string
	offset int64
	at     time.Time
}

// producer writes sequence-numbered records to one partition until stopped, recording every
// acknowledgement.
type producer struct {
	mu     sync.Mutex
	acks   []ack
	errs   map[string]int
	cancel context.CancelFunc
	done   chan struct{}
}

func startProducer(c *clustertest.Cluster, topic string, partition int32, acks kgo.Acks) *producer {
	cl := c.Client(kgo.RequiredAcks(acks), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxProduceRequestsInflightPerBroker(1), kgo.ProduceRequestTimeout(5*time.Second),
		kgo.RecordDeliveryTimeout(20*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{errs: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var wg sync.WaitGroup
		for i := 0; ctx.Err() == nil; i++ {
			wg.Add(1)
			r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(strconv.Itoa(i))}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.errs[errName(err)]++
					return
				}
				p.acks = append(p.acks, ack{string(r.Value), r.Offset, time.Now()})
			})
			time.Sleep(time.Millisecond)
		}
		wg.Wait()
	}()
	return p
}

func errName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

func (p *producer) stop() []ack {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acks
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acks)
}

// maxGap is the longest time between consecutive acknowledgements (the unavailability a
// producer saw).
func maxGap(acks []ack) time.Duration {
	var gap time.Duration
	for i := 1; i < len(acks); i++ {
		gap = max(gap, acks[i].at.Sub(acks[i-1].at))
	}
	return gap
}

// readAll reads topic-partition from the start to its high watermark, once that is at least
// minEnd (a new leader learns the high watermark from its followers' next fetches), returning
// offset → value.
func readAll(t *testing.T, c *clustertest.Cluster, topic string, partition int32, minEnd int64) map[int64]string {
	t.Helper()
	cl := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var end int64
	c.CheckFor(20*time.Second, "the high watermark", func() error {
		if end = endOffset(t, cl, topic, partition); end < minEnd {
			return errf("high watermark %d, want at least %d", end, minEnd)
		}
		return nil
	})
	out := map[int64]string{}
	if end == 0 {
		return out
	}
	cons := c.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	for {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s-%d: got %d of %d records: %v", topic, partition, len(out), end, err)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Offset] = string(r.Value)
			if r.Offset >= end-1 {
				done = true
			}
		})
		if done {
			return out
		}
	}
}

// endOffset is the partition's high watermark (ListOffsets latest).
func endOffset(t *testing.T, cl *kgo.Client, topic string, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		off, err := listEnd(ctx, cl, topic, partition)
		if err == nil {
			return off
		}
		if ctx.Err() != nil {
			t.Fatalf("end offset of %s-%d: %v", topic, partition, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func listEnd(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, errors.New("bad ListOffsets response")
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return 0, err
	}
	return p.Offset, nil
}

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }
