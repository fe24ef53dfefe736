package clustertest_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// benchRecords is how many 1 KiB records each throughput measurement writes.
const benchRecords = 200_000

// produceThroughput writes n 1 KiB records as fast as the client allows and returns records/s.
func produceThroughput(b *testing.B, cl *kgo.Client, topic string, n int) float64 {
	b.Helper()
	val := make([]byte, 1024)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for range n {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d records failed", f, n)
	}
	return float64(n) / time.Since(start).Seconds()
}

// pacedLatency writes at rate records/s for d and returns the produce latency histogram (µs).
func pacedLatency(b *testing.B, cl *kgo.Client, topic string, rate float64, d time.Duration) *hdrhistogram.Histogram {
	b.Helper()
	h := hdrhistogram.New(1, 60_000_000, 3)
	var mu sync.Mutex
	var wg sync.WaitGroup
	val := make([]byte, 1024)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 0; ; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if intended.Sub(start) >= d {
			break
		}
		// Sleep only when ahead by a millisecond: sleeping per record at high rates would
		// overshoot and charge the pacer's lag to the broker.
		if ahead := time.Until(intended); ahead > time.Millisecond {
			time.Sleep(ahead)
		}
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Value: val}, func(_ *kgo.Record, err error) {
			// Latency from the intended send time, so a stalled client is not excused
			// (coordinated omission).
			us := time.Since(intended).Microseconds()
			mu.Lock()
			if err == nil {
				h.RecordValue(max(us, 1))
			}
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	return h
}

// BenchmarkReplication measures, on one 3-broker cluster in the same run: RF=3 acks=all
// min.insync.replicas=2 throughput against RF=1 acks=1 (goal >= 0.33x), the p99 produce
// latency of RF=3 acks=all at half its maximum rate (goal <= 5 ms), and the unavailability a
// producer sees when the leader is killed (goal <= 2 s with the launcher's defaults:
// broker.session.timeout.ms=1000, broker.heartbeat.interval.ms=200).
func BenchmarkReplication(b *testing.B) {
	c := clustertest.Start(b, 3)
	c.CreateTopic("rf1", 4, 1, nil)
	c.CreateTopic("rf3", 4, 3, map[string]string{"min.insync.replicas": "2"})
	opts := []kgo.Opt{kgo.ProducerLinger(5 * time.Millisecond), kgo.ProducerBatchMaxBytes(256 << 10), kgo.MaxBufferedRecords(20000)}
	one := c.Client(append(opts, kgo.RequiredAcks(kgo.LeaderAck()))...)
	all := c.Client(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))...)
	produceThroughput(b, one, "rf1", 20000) // warm up connections and metadata
	produceThroughput(b, all, "rf3", 20000)
	b.ResetTimer()
	var rf1, rf3 float64
	for range b.N {
		rf1 = produceThroughput(b, one, "rf1", benchRecords)
		rf3 = produceThroughput(b, all, "rf3", benchRecords)
	}
	b.StopTimer()
	b.ReportMetric(rf1, "rf1-acks1-rec/s")
	b.ReportMetric(rf3, "rf3-acksall-rec/s")
	b.ReportMetric(rf3/rf1, "rf3/rf1")

	// Latency is measured without linger, so it is the cluster's, not the batching delay.
	lat := c.Client(kgo.ProducerLinger(0), kgo.MaxBufferedRecords(200000), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceThroughput(b, lat, "rf3", 20000)
	h := pacedLatency(b, lat, "rf3", rf3/2, 5*time.Second)
	b.ReportMetric(float64(h.ValueAtQuantile(50))/1000, "p50-ms@half")
	b.ReportMetric(float64(h.ValueAtQuantile(99))/1000, "p99-ms@half")
	low := pacedLatency(b, lat, "rf3", 5000, 5*time.Second)
	b.ReportMetric(float64(low.ValueAtQuantile(99))/1000, "p99-ms@5000/s")

	c.CreateTopic("kill", 1, 3, map[string]string{"min.insync.replicas": "2"})
	leader := c.WaitLeader("kill", 0)
	p := startProducer(c, "kill", 0, kgo.AllISRAcks())
	time.Sleep(2 * time.Second)
	c.Kill(leader)
	c.WaitLeader("kill", 0)
	time.Sleep(2 * time.Second)
	acks := p.stop()
	b.ReportMetric(maxGap(acks).Seconds(), "unavailable-s")
	b.Logf("RF=1 acks=1 %.0f rec/s, RF=3 acks=all %.0f rec/s (%.2fx); at %.0f rec/s p50 %.2f ms p99 %.2f ms; at 5000 rec/s p99 %.2f ms; leader kill: %s without acks",
		rf1, rf3, rf3/rf1, rf3/2, float64(h.ValueAtQuantile(50))/1000, float64(h.ValueAtQuantile(99))/1000,
		float64(low.ValueAtQuantile(99))/1000, maxGap(acks))
}
