package loadgen

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchDuration is how long each side of a comparison produces after benchWarmup.
const (
	benchDuration = 3 * time.Second
	benchWarmup   = 2 * time.Second
)

// maxRateConfig is a producer-only max-rate workload: 1 topic, 4 partitions, 1KiB records,
// acks=all, 16KiB batches, 5ms linger.
func maxRateConfig(b *testing.B, driver string) workloads.RunConfig {
	src := "name: bench\npartitionsPerTopic: 4\nmessageSize: 1KiB\nproducerRate: 0\nsubscriptionsPerTopic: 0\n" +
		"duration: " + benchDuration.String() + "\nwarmup: " + benchWarmup.String() + "\ndriver: " + driver + "\n"
	plan, err := workloads.Parse("bench.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	return plan.Configs[0]
}

// harnessRate runs the load generator and returns its acknowledged records/s over the
// measured seconds (after warmup), from the per-second series, and the process CPU time
// per acknowledged record in that window (broker included: kfake runs in this process).
func harnessRate(b *testing.B, rc workloads.RunConfig, bootstrap []string, withHistory bool) (float64, float64) {
	opts := Options{Bootstrap: bootstrap, Status: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: 30 * time.Second}
	if withHistory {
		f, err := os.Create(filepath.Join(b.TempDir(), "history.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		opts.History = history.NewWriter(f)
		defer opts.History.Close()
	}
	// Run starts producing 200ms after it is called (plus topic creation, ~ms); sample CPU
	// time over the whole seconds the series covers after warmup.
	from, to := benchWarmup.Seconds()+1, (benchWarmup + benchDuration).Seconds()
	cpu := make(chan time.Duration, 2)
	t0 := time.Now().Add(200 * time.Millisecond)
	go func() {
		time.Sleep(time.Until(t0.Add(time.Duration(from * float64(time.Second)))))
		cpu <- cpuTime()
		time.Sleep(time.Until(t0.Add(time.Duration(to * float64(time.Second)))))
		cpu <- cpuTime()
	}()
	res, err := Run(context.Background(), rc, opts)
	if err != nil {
		b.Fatal(err)
	}
	c0, c1 := <-cpu, <-cpu
	var acked, secs float64
	for _, s := range res.Series {
		if s.T > from+0.5 && s.T <= to+0.5 {
			acked += s.MsgsPerSec
			secs++
		}
	}
	return acked / secs, float64(c1-c0) / (acked * (to - from) / secs)
}

// bareFranzRate produces 1KiB records with a plain kgo client as fast as it accepts them
// and returns acknowledged records/s after warmup and CPU per record. Its settings match
// the workload's (no compression: kgo's default would be snappy).
func bareFranzRate(b *testing.B, bootstrap []string, topic string) (float64, float64) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.MaxBufferedRecords(1<<16), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxProduceRequestsInflightPerBroker(5))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var acked atomic.Int64
	measureFrom := time.Now().Add(benchWarmup)
	stop := measureFrom.Add(benchDuration)
	var base int64 = -1
	var cpu0 time.Duration
	for time.Now().Before(stop) {
		if base < 0 && !time.Now().Before(measureFrom) {
			base, cpu0 = acked.Load(), cpuTime()
		}
		cl.Produce(context.Background(), &kgo.Record{Value: make([]byte, 1024)}, func(_ *kgo.Record, err error) {
			if err == nil {
				acked.Add(1)
			}
		})
	}
	n, cpu := acked.Load()-base, cpuTime()-cpu0
	_ = cl.Flush(context.Background())
	return float64(n) / benchDuration.Seconds(), float64(cpu) / float64(n)
}

// bareSaramaRate is bareFranzRate with a plain Sarama AsyncProducer.
func bareSaramaRate(b *testing.B, bootstrap []string, topic string) (float64, float64) {
	cfg := saramaConfig("bare")
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Flush.Bytes = 16 << 10
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Producer.Retry.Max = SaramaMaxRetries
	cfg.ChannelBufferSize = 4096
	ap, err := sarama.NewAsyncProducer(bootstrap, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var acked atomic.Int64
	done := make(chan struct{}, 2)
	go func() {
		for range ap.Successes() {
			acked.Add(1)
		}
		done <- struct{}{}
	}()
	go func() {
		for range ap.Errors() {
		}
		done <- struct{}{}
	}()
	measureFrom := time.Now().Add(benchWarmup)
	stop := measureFrom.Add(benchDuration)
	var base int64 = -1
	var cpu0 time.Duration
	for time.Now().Before(stop) {
		if base < 0 && !time.Now().Before(measureFrom) {
			base, cpu0 = acked.Load(), cpuTime()
		}
		ap.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(make([]byte, 1024))}
	}
	n, cpu := acked.Load()-base, cpuTime()-cpu0
	ap.AsyncClose()
	<-done
	<-done
	return float64(n) / benchDuration.Seconds(), float64(cpu) / float64(n)
}

// BenchmarkHarnessOverhead compares the load generator with a bare producer loop of the
// same client against the same broker in the same run, alternating rounds so both see the
// same machine load. Throughputs are medians over rounds of acknowledged records/s after
// warmup: bare, search (producerRate 0, history on), unpaced (open loop far above capacity,
// history on) and nohistory (unpaced, history off). ratio = unpaced/bare (goal ≥ 0.9),
// search-ratio = search/bare, history-ratio = unpaced/nohistory (goal ≥ 0.9). Because the
// machine may be shared, it also reports process CPU per acknowledged record (broker
// included) and the same ratios computed from it (cpu-ratio = bare CPU / harness CPU),
// which other processes' load does not skew.
func BenchmarkHarnessOverhead(b *testing.B) {
	const rounds = 3
	for _, driver := range []string{"franz-go", "sarama"} {
		b.Run("driver="+driver+",size=1KiB", func(b *testing.B) {
			for range b.N {
				bootstrap := kchaosBootstrap(b)
				drv, err := NewDriver(driver, bootstrap)
				if err != nil {
					b.Fatal(err)
				}
				if err := drv.CreateTopics(context.Background(), []string{"bare"}, 4, 1, nil); err != nil {
					b.Fatal(err)
				}
				drv.Close()
				search := maxRateConfig(b, driver)
				unpaced := maxRateConfig(b, driver)
				unpaced.ProducerRate = 1e7
				var rate, cpu [4][]float64 // bare, search, unpaced, nohistory
				add := func(i int, r, c float64) { rate[i], cpu[i] = append(rate[i], r), append(cpu[i], c) }
				bare := bareFranzRate
				if driver == "sarama" {
					bare = bareSaramaRate
				}
				for range rounds {
					r, c := bare(b, bootstrap, "bare")
					add(0, r, c)
					r, c = harnessRate(b, search, bootstrap, true)
					add(1, r, c)
					r, c = harnessRate(b, unpaced, bootstrap, true)
					add(2, r, c)
					r, c = harnessRate(b, unpaced, bootstrap, false)
					add(3, r, c)
				}
				b.Logf("msgs/s bare %.0f search %.0f unpaced %.0f nohistory %.0f", rate[0], rate[1], rate[2], rate[3])
				b.Logf("cpu-ns/msg bare %.0f search %.0f unpaced %.0f nohistory %.0f", cpu[0], cpu[1], cpu[2], cpu[3])
				var m, c [4]float64
				for i := range m {
					m[i], c[i] = median(rate[i]), median(cpu[i])
				}
				b.ReportMetric(m[0], "bare-msgs/s")
				b.ReportMetric(m[1], "search-msgs/s")
				b.ReportMetric(m[2], "unpaced-msgs/s")
				b.ReportMetric(m[3], "nohistory-msgs/s")
				b.ReportMetric(m[2]/m[0], "ratio")
				b.ReportMetric(m[1]/m[0], "search-ratio")
				b.ReportMetric(m[2]/m[3], "history-ratio")
				b.ReportMetric(c[0], "bare-cpu-ns/msg")
				b.ReportMetric(c[2], "unpaced-cpu-ns/msg")
				b.ReportMetric(c[3], "nohistory-cpu-ns/msg")
				b.ReportMetric(c[0]/c[2], "cpu-ratio")
				b.ReportMetric(c[3]/c[2], "history-cpu-ratio")
				b.SetBytes(int64(m[2] * 1024 * benchDuration.Seconds()))
			}
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
