package broker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker"
)

// startInProcess runs a kchaos broker in this process on a temp dir, for benchmarks that
// compare it with kfake (also in-process) on equal terms.
func startInProcess(tb testing.TB, dir string, props map[string]string) *broker.Broker {
	tb.Helper()
	b, err := broker.New(broker.Config{NodeID: 1, Listen: "127.0.0.1:0", DataDir: dir, Props: props},
		broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// peer is a broker under measurement: kchaos on disk, or kfake in memory.
type peer struct {
	name  string
	start func(tb testing.TB, topic string, parts int32) []string
}

var peers = []peer{
	{"kchaos", func(tb testing.TB, topic string, parts int32) []string {
		b := startInProcess(tb, tb.TempDir(), nil)
		createTopic(tb, newClient(tb, b.Addr()), topic, parts, nil)
		return []string{b.Addr()}
	}},
	{"kfake", func(tb testing.TB, topic string, parts int32) []string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topic))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(c.Close)
		return c.ListenAddrs()
	}},
}

// produceFranz produces n records of size bytes round-robin over the topic's partitions with
// acks=1 and returns the elapsed time.
func produceFranz(tb testing.TB, addrs []string, topic string, n, size int) time.Duration {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(1<<16), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	value := []byte(strings.Repeat("x", size))
	// Warm up connections and metadata outside the timed region.
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: value}).FirstErr(); err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
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

// produceSarama does the same with Sarama's async producer.
func produceSarama(tb testing.TB, addrs []string, topic string, n, size int) time.Duration {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Flush.Bytes = 1 << 20
	cfg.Producer.Flush.Frequency = time.Millisecond
	cfg.ChannelBufferSize = 1 << 14
	p, err := sarama.NewAsyncProducer(addrs, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer p.Close()
	value := sarama.ByteEncoder(strings.Repeat("x", size))
	done := make(chan error, 1)
	go func() {
		var first error
		for i := 0; i < n+1; i++ {
			select {
			case <-p.Successes():
			case e := <-p.Errors():
				if first == nil {
					first = e.Err
				}
			}
		}
		done <- first
	}()
	p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: value}
	start := time.Now()
	for i := 0; i < n; i++ {
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: value}
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkProduce measures produce throughput, acks=1, 4 partitions, against kchaos (writing
// segments to disk) and kfake (in memory) in the same run, and reports their ratio
// (kchaos/kfake records per second; the goal is >= 1.0 for franz-go at 1 KiB).
func BenchmarkProduce(b *testing.B) {
	clients := []struct {
		name    string
		produce func(testing.TB, []string, string, int, int) time.Duration
	}{{"franz-go", produceFranz}, {"sarama", produceSarama}}
	for _, cl := range clients {
		for _, size := range []int{1024, 100} {
			b.Run(fmt.Sprintf("client=%s,size=%dB,parts=4,acks=1", cl.name, size), func(b *testing.B) {
				n := b.N * 20000
				rates := map[string]float64{}
				for _, p := range peers {
					addrs := p.start(b, "bench", 4)
					d := cl.produce(b, addrs, "bench", n, size)
					rates[p.name] = float64(n) / d.Seconds()
				}
				b.SetBytes(int64(size) * 20000)
				b.ReportMetric(rates["kchaos"], "kchaos_rec/s")
				b.ReportMetric(rates["kfake"], "kfake_rec/s")
				b.ReportMetric(rates["kchaos"]/rates["kfake"], "ratio")
			})
		}
	}
}
