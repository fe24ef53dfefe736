package loadgen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/shirou/gopsutil/v4/process"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchDuration is how long each side of a comparison produces after benchWarmup; the
// max-rate search gets benchSearchWarmup instead, to find the rate first. 10s: with 3s
// sides, one second of another tenant's load on this 2-core machine moved a side by a third.
const (
	benchDuration     = 10 * time.Second
	benchWarmup       = 2 * time.Second
	benchSearchWarmup = 6 * time.Second
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

// cpuSample is the CPU time used so far by this process and by the broker process.
type cpuSample struct{ client, broker time.Duration }

// benchBrokerPid is the broker process BenchmarkHarnessOverhead measures against.
var benchBrokerPid int

// sampleCPU reads this process's CPU time and the broker's (user plus system).
func sampleCPU() cpuSample {
	s := cpuSample{client: cpuTime()}
	if benchBrokerPid != 0 {
		if p, err := process.NewProcess(int32(benchBrokerPid)); err == nil {
			if t, err := p.Times(); err == nil {
				s.broker = time.Duration((t.User + t.System) * float64(time.Second))
			}
		}
	}
	return s
}

// perMsg is the CPU time per acknowledged record between two samples: client and client plus
// broker, in nanoseconds.
func perMsg(c0, c1 cpuSample, msgs float64) [2]float64 {
	client := float64(c1.client - c0.client)
	return [2]float64{client / msgs, (client + float64(c1.broker-c0.broker)) / msgs}
}

// harnessRate runs the load generator and returns its acknowledged records/s over the
// measured seconds (after warmup), from the per-second series, and the CPU time per
// acknowledged record in that window (perMsg). The run writes a history when withHistory is
// set; measure runs it as kchaos run's performance steps do (Options.Measure, no history).
func harnessRate(b *testing.B, rc workloads.RunConfig, bootstrap []string, withHistory, measure bool) (float64, [2]float64) {
	opts := Options{Bootstrap: bootstrap, Status: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: 30 * time.Second, Measure: measure}
	if withHistory {
		f, err := os.Create(filepath.Join(b.TempDir(), "history.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		// Removed after the run: gigabytes of finished histories left to the end of the
		// benchmark would slow later rounds, every side alike, with writeback.
		defer os.Remove(f.Name())
		defer f.Close()
		opts.History = history.NewWriter(f)
		defer opts.History.Close()
	}
	// Run starts producing 200ms after it is called (plus topic creation, ~ms); sample CPU
	// time over the whole seconds the series covers after warmup.
	warmup, duration := time.Duration(rc.Warmup), time.Duration(rc.Duration)
	from, to := warmup.Seconds()+1, (warmup + duration).Seconds()
	cpu := make(chan cpuSample, 2)
	t0 := time.Now().Add(200 * time.Millisecond)
	go func() {
		time.Sleep(time.Until(t0.Add(time.Duration(from * float64(time.Second)))))
		stopProfile := startWindowProfile(b, fmt.Sprintf("%s-rate%.0f-history%t-measure%t", rc.Driver, rc.ProducerRate, withHistory, measure))
		cpu <- sampleCPU()
		time.Sleep(time.Until(t0.Add(time.Duration(to * float64(time.Second)))))
		cpu <- sampleCPU()
		stopProfile()
	}()
	res, err := Run(context.Background(), rc, opts)
	if err != nil {
		b.Fatal(err)
	}
	c0, c1 := <-cpu, <-cpu
	// The points wholly inside [from, to], weighted by their lengths: the series ends with a
	// point of a few milliseconds (from the last whole second to the end of the run, when
	// only outcomes still come in), which counted as a whole second, a third of the figure.
	var acked, secs float64
	prev := 0.0
	for _, s := range res.Series {
		if prev >= from-0.05 && s.T <= to+0.05 {
			acked += float64(s.Acked)
			secs += s.T - prev
		}
		prev = s.T
	}
	return acked / secs, perMsg(c0, c1, acked*(to-from)/secs)
}

// benchProducerSettings are the client settings of maxRateConfig: the bare loops use them,
// so the comparison is of the harness around the same client, not of client settings.
func benchProducerSettings(b *testing.B, driver string, bootstrap []string) ProducerSettings {
	return ProducerSettings{Bootstrap: bootstrap, ClientID: "bare", ProducerConfig: maxRateConfig(b, driver).Producer}
}

// barePacer paces a bare loop at rate records/s (0: unpaced) the way the harness's Pacer
// does: it sleeps until a send is due, and sends that are overdue go at once.
type barePacer struct {
	start time.Time
	rate  float64
	n     int64
}

func (p *barePacer) wait() {
	if p.rate <= 0 {
		return
	}
	due := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
	p.n++
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// bareLoop calls send at rate records/s (0: as fast as send returns) for benchWarmup plus
// benchDuration, and returns acknowledged records/s (counted by acked) over benchDuration
// and the CPU per record in it. driver names the window's profile.
func bareLoop(b *testing.B, driver string, rate float64, acked *atomic.Int64, send func()) (float64, [2]float64) {
	measureFrom := time.Now().Add(benchWarmup)
	stop := measureFrom.Add(benchDuration)
	var base int64 = -1
	var cpu0 cpuSample
	stopProfile := func() {}
	pacer := &barePacer{start: time.Now(), rate: rate}
	for time.Now().Before(stop) {
		if base < 0 && !time.Now().Before(measureFrom) {
			base, cpu0 = acked.Load(), sampleCPU()
			stopProfile = startWindowProfile(b, fmt.Sprintf("%s-bare-rate%.0f", driver, rate))
		}
		pacer.wait()
		send()
	}
	n, cpu1 := acked.Load()-base, sampleCPU()
	stopProfile()
	return float64(n) / benchDuration.Seconds(), perMsg(cpu0, cpu1, float64(n))
}

// bareFranzRate produces 1KiB records with a plain kgo client, configured as the harness
// configures its client, at rate records/s (0: as fast as the client accepts them) and
// returns acknowledged records/s after warmup and CPU per record.
func bareFranzRate(b *testing.B, bootstrap []string, topic string, rate float64) (float64, [2]float64) {
	opts := append(franzProducerOpts(benchProducerSettings(b, "franz-go", bootstrap)), kgo.DefaultProduceTopic(topic))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var acked atomic.Int64
	r, c := bareLoop(b, "franz-go", rate, &acked, func() {
		cl.Produce(context.Background(), &kgo.Record{Value: make([]byte, 1024)}, func(_ *kgo.Record, err error) {
			if err == nil {
				acked.Add(1)
			}
		})
	})
	_ = cl.Flush(context.Background())
	return r, c
}

// bareSaramaRate is bareFranzRate with a plain Sarama AsyncProducer.
func bareSaramaRate(b *testing.B, bootstrap []string, topic string, rate float64) (float64, [2]float64) {
	cfg, err := saramaProducerConfig(benchProducerSettings(b, "sarama", bootstrap))
	if err != nil {
		b.Fatal(err)
	}
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
	r, c := bareLoop(b, "sarama", rate, &acked, func() {
		ap.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(make([]byte, 1024))}
	})
	ap.AsyncClose()
	<-done
	<-done
	return r, c
}

// bareKafkaGoRate is bareFranzRate with a plain async kafka-go Writer, configured as the
// kafka-go driver configures it (batch records sized for 1KiB values, as its first Send
// does), and the same bound on records without an outcome (kafkaGoMaxBuffered).
func bareKafkaGoRate(b *testing.B, bootstrap []string, topic string, rate float64) (float64, [2]float64) {
	w, err := kafkaGoWriter(benchProducerSettings(b, "kafka-go", bootstrap))
	if err != nil {
		b.Fatal(err)
	}
	w.BatchSize = int(w.BatchBytes)/1024 + 1
	var acked, done atomic.Int64
	w.Completion = func(msgs []kafkago.Message, err error) {
		if err == nil {
			acked.Add(int64(len(msgs)))
		}
		done.Add(int64(len(msgs)))
	}
	var sent int64
	r, c := bareLoop(b, "kafka-go", rate, &acked, func() {
		for sent-done.Load() >= kafkaGoMaxBuffered {
			time.Sleep(50 * time.Microsecond)
		}
		sent++
		_ = w.WriteMessages(context.Background(), kafkago.Message{Topic: topic, Value: make([]byte, 1024)})
	})
	_ = w.Close()
	return r, c
}

// BenchmarkHarnessOverhead compares the load generator with a bare producer loop of the
// same client against the same broker process in the same run, alternating rounds so both
// see the same machine load. Throughputs are medians over rounds (KCHAOS_BENCH_ROUNDS,
// default 5) of acknowledged records/s after warmup: bare (as fast as the client accepts),
// search (the capacity search as kchaos run's performance step runs it: producerRate 0,
// Options.Measure, no history, 6s warmup), paced-bare (the bare loop paced at the rate the
// search sustained in that round), search-history (the same search in a run that writes a
// history: a max-rate workload without a performance section), unpaced (open loop far above
// capacity, history on) and nohistory (unpaced, history off), and one more bare side after
// the last round. ratio = unpaced/bare (goal ≥ 0.9), search-ratio = search/bare (goal ≥
// 0.9), search-history-ratio = search-history/bare, where bare is the mean of the bare sides
// before and after the round, and history-ratio = unpaced/nohistory (goal ≥ 0.9).
//
// On a machine whose cores the client and the broker share, throughput follows the CPU both
// spend per record, and other tenants' load makes wall-clock rates noisy. So the benchmark
// also reports CPU per acknowledged record of the client alone and of client plus broker
// (total), and total-cpu-ratio = bare total / unpaced total: the throughput ratio on an
// otherwise idle machine, which other processes' load does not skew. A paced producer
// spends more per record than a saturated one (smaller requests, more wake-ups), on the
// client and on the broker, so the search's own yardstick is search-total-cpu-ratio =
// paced-bare total / search total: the harness's cost at the rate it found (goal ≥ 0.9).
func BenchmarkHarnessOverhead(b *testing.B) {
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("KCHAOS_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	// The harness and the bare loops run with the garbage collector settings of kchaos run.
	defer TuneGC()()
	bares := map[string]func(*testing.B, []string, string, float64) (float64, [2]float64){
		"franz-go": bareFranzRate, "sarama": bareSaramaRate, "kafka-go": bareKafkaGoRate, "confluent": bareConfluentRate,
	}
	for _, driver := range AvailableDrivers() {
		b.Run("driver="+driver+",size=1KiB", func(b *testing.B) {
			for range b.N {
				// Each partition keeps at most 64MiB in 32MiB segments (the broker checks
				// retention every second): a side writes gigabytes, and on this virtual machine
				// memory the kernel touches for the first time in a while is slow (the host
				// takes back free pages). A log that kept everything fell from about 400,000
				// to 170,000 records/s some 6GB into a side, the broker then spending 90% of
				// its time in the kernel; sides measured before and after that point compared
				// the memory, not the producers.
				broker := brokertest.Start(b, brokertest.Set("group.initial.rebalance.delay.ms", "0"),
					brokertest.Set("log.segment.bytes", strconv.Itoa(32<<20)), brokertest.Set("log.retention.bytes", strconv.Itoa(64<<20)),
					brokertest.DataDir(memDir(b)))
				bootstrap := []string{broker.Addr()}
				benchBrokerPid = broker.Pid()
				defer func() { benchBrokerPid = 0 }()
				search := maxRateConfig(b, driver)
				search.Warmup = workloads.Duration(benchSearchWarmup)
				unpaced := maxRateConfig(b, driver)
				unpaced.ProducerRate = 1e7
				var rate, cpu, total [6][]float64 // bare, search, unpaced, nohistory, paced, search-history
				add := func(i int, r float64, c [2]float64) {
					rate[i], cpu[i], total[i] = append(rate[i], r), append(cpu[i], c[0]), append(total[i], c[1])
				}
				bare := bares[driver]
				for range rounds {
					// Each side starts on an empty broker: the data written so far (gigabytes)
					// would otherwise load later rounds with page-cache pressure and writeback.
					resetTopics(b, bootstrap, driver)
					r, c := bare(b, bootstrap, "bare", 0)
					add(0, r, c)
					resetTopics(b, bootstrap, "")
					searched, c := harnessRate(b, search, bootstrap, false, true)
					add(1, searched, c)
					// The bare loop paced at the rate the search sustained: what the client
					// and the broker cost per record at that rate without the harness.
					resetTopics(b, bootstrap, driver)
					r, c = bare(b, bootstrap, "bare", searched)
					add(4, r, c)
					resetTopics(b, bootstrap, "")
					r, c = harnessRate(b, search, bootstrap, true, false)
					add(5, r, c)
					resetTopics(b, bootstrap, "")
					r, c = harnessRate(b, unpaced, bootstrap, true, false)
					add(2, r, c)
					resetTopics(b, bootstrap, "")
					r, c = harnessRate(b, unpaced, bootstrap, false, false)
					add(3, r, c)
				}
				// One more bare side after the last round: each round's harness sides are
				// compared with the mean of the bare sides before and after them (below).
				resetTopics(b, bootstrap, driver)
				closing, _ := bare(b, bootstrap, "bare", 0)
				bracket := make([]float64, rounds)
				for i := range rounds {
					next := closing
					if i+1 < rounds {
						next = rate[0][i+1]
					}
					bracket[i] = (rate[0][i] + next) / 2
				}
				b.Logf("msgs/s closing bare %.0f; bare before and after each round %.0f", closing, bracket)
				b.Logf("msgs/s bare %.0f search %.0f paced-bare %.0f search-history %.0f unpaced %.0f nohistory %.0f", rate[0], rate[1], rate[4], rate[5], rate[2], rate[3])
				b.Logf("client cpu-ns/msg bare %.0f search %.0f paced-bare %.0f search-history %.0f unpaced %.0f nohistory %.0f", cpu[0], cpu[1], cpu[4], cpu[5], cpu[2], cpu[3])
				b.Logf("total cpu-ns/msg bare %.0f search %.0f paced-bare %.0f search-history %.0f unpaced %.0f nohistory %.0f", total[0], total[1], total[4], total[5], total[2], total[3])
				var m, c, t [6]float64
				for i := range m {
					m[i], c[i], t[i] = median(rate[i]), median(cpu[i]), median(total[i])
				}
				b.ReportMetric(m[0], "bare-msgs/s")
				b.ReportMetric(m[1], "search-msgs/s")
				b.ReportMetric(m[5], "search-history-msgs/s")
				b.ReportMetric(m[2], "unpaced-msgs/s")
				b.ReportMetric(m[3], "nohistory-msgs/s")
				b.ReportMetric(c[0], "bare-cpu-ns/msg")
				b.ReportMetric(c[2], "unpaced-cpu-ns/msg")
				b.ReportMetric(c[3], "nohistory-cpu-ns/msg")
				b.ReportMetric(t[0], "bare-total-cpu-ns/msg")
				b.ReportMetric(t[2], "unpaced-total-cpu-ns/msg")
				b.ReportMetric(t[1], "search-total-cpu-ns/msg")
				b.ReportMetric(t[4], "paced-bare-total-cpu-ns/msg")
				// Ratios are medians of each round's ratio: a round's sides ran seconds
				// apart, so slow drifts in the machine's speed cancel out. Ratios to the bare
				// loop use the mean of the bare sides that ran before and after the round
				// (about 90s apart): this machine's speed drifts by tens of percent within
				// a minute (bare rates of one run: 441,620 408,160 407,100 357,300 293,840),
				// and a harness side measured 5-15s after its bare side alone carried that
				// drift. search-ratio-before is the search against the bare side before it
				// alone, as measured before.
				b.ReportMetric(pairedRatio(rate[2], bracket), "ratio")
				b.ReportMetric(pairedRatio(rate[1], bracket), "search-ratio")
				b.ReportMetric(pairedRatio(rate[1], rate[0]), "search-ratio-before")
				b.ReportMetric(pairedRatio(rate[5], bracket), "search-history-ratio")
				b.ReportMetric(pairedRatio(rate[2], rate[3]), "history-ratio")
				b.ReportMetric(pairedRatio(total[0], total[2]), "total-cpu-ratio")
				b.ReportMetric(pairedRatio(total[3], total[2]), "history-total-cpu-ratio")
				b.ReportMetric(pairedRatio(total[4], total[1]), "search-total-cpu-ratio")
				b.SetBytes(int64(m[2] * 1024 * benchDuration.Seconds()))
			}
		})
	}
}

// memDir returns a fresh directory in memory (under /dev/shm) for a benchmark broker's
// data, removed when b ends, or b.TempDir() where there is no /dev/shm. On a disk, a
// saturated producer fills the page cache until the kernel's background writeback starts
// (10% of memory dirty, about 2 GB here) and from then on runs at the disk's write speed:
// 300,000 1KiB records/s fell to 140,000 about 7s in. Sides measured at different times
// into a run would then compare those two regimes, not the producers.
func memDir(b *testing.B) string {
	dir, err := os.MkdirTemp("/dev/shm", "kchaos-bench-")
	if err != nil {
		b.Logf("broker data on disk (no memory filesystem: %v)", err)
		return b.TempDir()
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// resetTopics deletes every topic on the broker and, when driver is set, creates the bare
// loop's topic "bare" (4 partitions) with that driver.
func resetTopics(b *testing.B, bootstrap []string, driver string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		b.Fatal(err)
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TimeoutMillis = 30000
	for _, t := range meta.Topics {
		if t.Topic != nil {
			del.TopicNames = append(del.TopicNames, *t.Topic) // v1-5
			dt := kmsg.NewDeleteTopicsRequestTopic()
			dt.Topic = t.Topic
			del.Topics = append(del.Topics, dt) // v6+
		}
	}
	if len(del.TopicNames) > 0 {
		resp, err := del.RequestWith(ctx, cl)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range resp.Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				b.Fatalf("delete topic %v: %v", t.Topic, err)
			}
		}
	}
	if driver == "" {
		return
	}
	drv, err := NewDriver(driver, bootstrap, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer drv.Close()
	if err := drv.CreateTopics(ctx, []string{"bare"}, 4, 1, nil); err != nil {
		b.Fatal(err)
	}
}

// startWindowProfile starts a CPU profile of a measured window, in name.pprof, when
// KCHAOS_BENCH_PROFILE names a directory (run without -cpuprofile). It returns the function
// that stops it.
func startWindowProfile(b *testing.B, name string) func() {
	dir := os.Getenv("KCHAOS_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		b.Error(err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Error(err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// pairedRatio returns the median over rounds of num[i]/den[i].
func pairedRatio(num, den []float64) float64 {
	r := make([]float64, len(num))
	for i := range num {
		r[i] = num[i] / den[i]
	}
	return median(r)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
