package broker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceWith produces n records of size bytes round-robin over topic with a franz-go client
// built from opts (acks=all, no linger, no compression added) and returns the elapsed time.
func produceWith(tb testing.TB, addr, topic string, n, size int, opts ...kgo.Opt) time.Duration {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1 << 16), kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	value := []byte(strings.Repeat("x", size))
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: value}).FirstErr(); err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	d := time.Since(start)
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
	return d
}

// BenchmarkProduceIdempotence measures what the producer-state checks cost: franz-go produce
// throughput, acks=all, 4 partitions, with idempotence (franz-go's default) and without it,
// against the same in-process broker, and reports the ratio idempotent/plain records per
// second.
func BenchmarkProduceIdempotence(b *testing.B) {
	const perOp, size = 20000, 1024
	b.Run("client=franz-go,size=1KiB,parts=4,acks=all", func(b *testing.B) {
		br := startInProcess(b, b.TempDir(), nil)
		admin := newClient(b, br.Addr())
		createTopic(b, admin, "plain", 4, nil)
		createTopic(b, admin, "idem", 4, nil)
		// The plain producer gets the idempotent producer's 5 requests in flight per broker
		// (without idempotence franz-go defaults to 1); runs alternate so neither gets the
		// warmer disk.
		inflight := kgo.MaxProduceRequestsInflightPerBroker(5)
		var plain, idem time.Duration
		for i := 0; i < b.N; i++ {
			if i%2 == 0 {
				plain += produceWith(b, br.Addr(), "plain", perOp, size, kgo.DisableIdempotentWrite(), inflight)
				idem += produceWith(b, br.Addr(), "idem", perOp, size)
			} else {
				idem += produceWith(b, br.Addr(), "idem", perOp, size)
				plain += produceWith(b, br.Addr(), "plain", perOp, size, kgo.DisableIdempotentWrite(), inflight)
			}
		}
		n := b.N * perOp
		b.SetBytes(int64(size) * perOp * 2)
		pr, ir := float64(n)/plain.Seconds(), float64(n)/idem.Seconds()
		b.ReportMetric(pr, "plain_rec/s")
		b.ReportMetric(ir, "idempotent_rec/s")
		b.ReportMetric(ir/pr, "ratio")
	})
}
