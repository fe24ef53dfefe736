package target

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/kchaos/kchaos/rundir"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/shirou/gopsutil/v4/process"
)

// DefaultMetrics are the broker gauges and counters the sampler scrapes by default, by their
// Prometheus names as broker/metrics.go and the controller export them (Kafka's JMX names,
// lower-cased). Names a broker does not export are recorded as absent, not as zero.
var DefaultMetrics = []string{
	"kafka_server_replicamanager_underreplicatedpartitions",
	"kafka_controller_kafkacontroller_activecontrollercount",
	"kafka_server_replicamanager_isrshrinks_total",
	"kafka_controller_kafkacontroller_offlinepartitionscount",
	"kafka_server_replicamanager_partitioncount",
}

// SampleTarget is one process to sample: its name in plots ("broker-1"), its pid (0 while it
// is down) and its Prometheus address host:port ("" for none).
type SampleTarget struct {
	Name        string
	Pid         int
	MetricsAddr string
}

// SamplerConfig configures a Sampler.
type SamplerConfig struct {
	// Targets returns the processes to sample now; it is called every tick, so restarted
	// brokers (new pids) are followed.
	Targets func() []SampleTarget
	// Metrics are the Prometheus metric names to scrape; default DefaultMetrics. A metric
	// with several label sets is summed.
	Metrics []string
	// Interval is the sampling period; default 1s.
	Interval time.Duration
	// Timeout bounds one scrape; default 500ms.
	Timeout time.Duration
}

// Sampler samples CPU, RSS and disk writes of processes and scrapes their Prometheus
// endpoints once per interval until Stop.
type Sampler struct {
	cfg    SamplerConfig
	start  time.Time
	cancel context.CancelFunc
	done   chan struct{}
	client *http.Client

	mu  sync.Mutex // guards res
	res rundir.Resources

	prev map[string]procPrev // owned by the sampling goroutine
}

type procPrev struct {
	pid     int
	cpu     float64 // user+system seconds
	written uint64
	at      time.Time
}

// StartSampler starts sampling in the background.
func StartSampler(cfg SamplerConfig) *Sampler {
	if cfg.Metrics == nil {
		cfg.Metrics = DefaultMetrics
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sampler{cfg: cfg, start: time.Now(), cancel: cancel, done: make(chan struct{}),
		client: &http.Client{Timeout: cfg.Timeout}, prev: map[string]procPrev{}}
	s.res = rundir.Resources{Start: s.start.UTC().Format(time.RFC3339Nano), Processes: map[string]*rundir.ProcessSeries{}}
	go s.loop(ctx)
	return s
}

// Stop ends sampling and returns what was recorded.
func (s *Sampler) Stop() *rundir.Resources {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return &s.res
}

func (s *Sampler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	s.sample(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample(ctx)
		}
	}
}

func (s *Sampler) sample(ctx context.Context) {
	now := time.Now()
	for _, tg := range s.cfg.Targets() {
		cpu, rss, wrote := s.procSample(ctx, tg, now)
		vals := map[string]*float64{}
		if tg.MetricsAddr != "" && tg.Pid != 0 {
			vals = s.scrape(ctx, tg.MetricsAddr)
		}
		s.mu.Lock()
		ps := s.res.Processes[tg.Name]
		if ps == nil {
			ps = &rundir.ProcessSeries{Metrics: map[string][]*float64{}}
			s.res.Processes[tg.Name] = ps
		}
		ps.T = append(ps.T, now.Sub(s.start).Seconds())
		ps.Pid = append(ps.Pid, tg.Pid)
		ps.CPU = append(ps.CPU, cpu)
		ps.RSS = append(ps.RSS, rss)
		ps.WriteBytes = append(ps.WriteBytes, wrote)
		for _, m := range s.cfg.Metrics {
			for len(ps.Metrics[m]) < len(ps.T)-1 {
				ps.Metrics[m] = append(ps.Metrics[m], nil)
			}
			ps.Metrics[m] = append(ps.Metrics[m], vals[m])
		}
		s.mu.Unlock()
	}
}

// procSample returns CPU percent since the previous sample of the same pid, RSS, and bytes
// written since then. A new or dead pid reports zeros for the deltas.
func (s *Sampler) procSample(ctx context.Context, tg SampleTarget, now time.Time) (float64, int64, int64) {
	if tg.Pid <= 0 {
		delete(s.prev, tg.Name)
		return 0, 0, 0
	}
	p, err := process.NewProcessWithContext(ctx, int32(tg.Pid))
	if err != nil {
		delete(s.prev, tg.Name)
		return 0, 0, 0
	}
	var cpuSecs float64
	if t, err := p.TimesWithContext(ctx); err == nil {
		cpuSecs = t.User + t.System
	}
	var rss int64
	if m, err := p.MemoryInfoWithContext(ctx); err == nil {
		rss = int64(m.RSS)
	}
	var written uint64
	if io, err := p.IOCountersWithContext(ctx); err == nil {
		written = io.WriteBytes
	}
	prev, ok := s.prev[tg.Name]
	s.prev[tg.Name] = procPrev{pid: tg.Pid, cpu: cpuSecs, written: written, at: now}
	if !ok || prev.pid != tg.Pid {
		return 0, rss, 0
	}
	var cpu float64
	if dt := now.Sub(prev.at).Seconds(); dt > 0 {
		cpu = (cpuSecs - prev.cpu) / dt * 100
	}
	return max(0, cpu), rss, int64(max(0, int64(written)-int64(prev.written)))
}

// scrape reads the configured metrics from http://addr/metrics, summing label sets.
func (s *Sampler) scrape(ctx context.Context, addr string) map[string]*float64 {
	out := map[string]*float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return out
	}
	for _, name := range s.cfg.Metrics {
		f := fams[name]
		if f == nil {
			continue
		}
		sum := 0.0
		for _, m := range f.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				sum += m.GetUntyped().GetValue()
			}
		}
		out[name] = &sum
	}
	return out
}

// StopAndWrite stops the sampler and writes what it recorded as JSON to path
// (rundir.ResourcesFile in a configuration folder).
func (s *Sampler) StopAndWrite(path string) error {
	b, err := json.MarshalIndent(s.Stop(), "", " ")
	if err != nil {
		return fmt.Errorf("target: resources: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	return nil
}
