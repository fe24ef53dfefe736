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
// measured seconds (after warmup), from the per-second series.
func harnessRate(b *testing.B, rc workloads.RunConfig, bootstrap []string, withHistory bool) float64 {
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
	res, err := Run(context.Background(), rc, opts)
	if err != nil {
		b.Fatal(err)
	}
	from, to := benchWarmup.Seconds()+0.5, (benchWarmup+benchDuration).Seconds()+0.5
	var acked, secs float64
	for _, s := range res.Series {
		if s.T > from && s.T <= to {
			acked += s.MsgsPerSec
			secs++
		}
	}
	return acked / secs
}

// bareFranzRate produces 1KiB records with a plain kgo client as fast as it accepts them
// and returns acknowledged records/s after warmup.
func bareFranzRate(b *testing.B, bootstrap []string, topic string) float64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.MaxBufferedRecords(1<<16), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var acked atomic.Int64
	measureFrom := time.Now().Add(benchWarmup)
	stop := measureFrom.Add(benchDuration)
	var base int64 = -1
	for time.Now().Before(stop) {
		if base < 0 && !time.Now().Before(measureFrom) {
			base = acked.Load()
		}
		cl.Produce(context.Background(), &kgo.Record{Value: make([]byte, 1024)}, func(_ *kgo.Record, err error) {
			if err == nil {
				acked.Add(1)
			}
		})
	}
	n := acked.Load() - base
	_ = cl.Flush(context.Background())
	return float64(n) / benchDuration.Seconds()
}

// bareSaramaRate is bareFranzRate with a plain Sarama AsyncProducer.
func bareSaramaRate(b *testing.B, bootstrap []string, topic string) float64 {
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
	for time.Now().Before(stop) {
		if base < 0 && !time.Now().Before(measureFrom) {
			base = acked.Load()
		}
		ap.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(make([]byte, 1024))}
	}
	n := acked.Load() - base
	ap.AsyncClose()
	<-done
	<-done
	return float64(n) / benchDuration.Seconds()
}

// BenchmarkHarnessOverhead compares the load generator with a bare producer loop of the
// same client against the same broker in the same run, alternating rounds so both see the
// same machine load. Reported (medians over rounds, records/s after warmup):
// bare-msgs/s, search-msgs/s (producerRate 0: the max-rate search, history on),
// unpaced-msgs/s (open loop far above capacity, history on), nohistory-msgs/s (unpaced,
// history off); ratio = unpaced/bare (goal ≥ 0.9), search-ratio = search/bare,
// history-ratio = unpaced/nohistory (goal ≥ 0.9).
func BenchmarkHarnessOverhead(b *testing.B) {
	const rounds = 3
	for _, driver := range []string{"franz-go", "sarama"} {
		b.Run("driver="+driver+",size=1KiB", func(b *testing.B) {
			for range b.N {
				bootstrap := testBootstrap(b)
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
				var bare, srch, unp, nohist []float64
				for range rounds {
					if driver == "franz-go" {
						bare = append(bare, bareFranzRate(b, bootstrap, "bare"))
					} else {
						bare = append(bare, bareSaramaRate(b, bootstrap, "bare"))
					}
					srch = append(srch, harnessRate(b, search, bootstrap, true))
					unp = append(unp, harnessRate(b, unpaced, bootstrap, true))
					nohist = append(nohist, harnessRate(b, unpaced, bootstrap, false))
				}
				mb, ms, mu, mn := median(bare), median(srch), median(unp), median(nohist)
				b.Logf("bare %v search %v unpaced %v nohistory %v", bare, srch, unp, nohist)
				b.ReportMetric(mb, "bare-msgs/s")
				b.ReportMetric(ms, "search-msgs/s")
				b.ReportMetric(mu, "unpaced-msgs/s")
				b.ReportMetric(mn, "nohistory-msgs/s")
				b.ReportMetric(mu/mb, "ratio")
				b.ReportMetric(ms/mb, "search-ratio")
				b.ReportMetric(mu/mn, "history-ratio")
				b.SetBytes(int64(mu * 1024 * benchDuration.Seconds()))
			}
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
