// Package rundir is the contract between what writes a run directory (the load generator, the
// target's resource sampler, the checker, kchaos run) and what only reads it (reports, kchaos
// check and report): the files of a configuration's folder and the types written into them.
// It holds no behaviour beyond summarising a histogram, so readers need nothing that runs a
// cluster or load.
package rundir

import (
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Files a configuration's folder holds, as kchaos run writes them.
const (
	// HistoryFile is the run's history (history.Writer's JSON Lines).
	HistoryFile = "history.jsonl"
	// ResultFile is the load generator's Result.
	ResultFile = "result.json"
	// SeriesFile is the load generator's per-second series, a []Second.
	SeriesFile = "series.json"
	// VerdictFile is the checker's result.
	VerdictFile = "verdict.json"
	// ResourcesFile is the resource sampler's Resources.
	ResourcesFile = "resources.json"
	// PerformanceFile is the configuration's Performance, when its workload asks for it.
	PerformanceFile = "performance.json"
)

// Performance is what a configuration costs, measured before its run proper with no fault in
// force (workloads.PerformanceConfig): PerformanceFile.
type Performance struct {
	// Capacity is the highest rate the cluster sustained with a bounded queue, in records/s
	// (acknowledged; for acks=0, handed to the network), and CapacityMBps the same in MB/s
	// (10^6 bytes) of record values.
	Capacity     float64 `json:"capacity"`
	CapacityMBps float64 `json:"capacity_mbps"`
	// CapacityLatency is the publish latency while the search ran: a bounded queue, not an
	// idle cluster, so it is the latency at capacity.
	CapacityLatency Percentiles `json:"capacity_latency"`
	// CapacityErrors counts errors by Kafka error name during the capacity search: a
	// search that met errors (a leader moved, a broker was fenced) measured a failover, not
	// the configuration.
	CapacityErrors map[string]int64 `json:"capacity_errors,omitempty"`
	// Points are the latency-throughput curve in increasing offered load.
	Points []LoadPoint `json:"points"`
}

// LoadPoint is one offered load of a latency-throughput curve.
type LoadPoint struct {
	// Name is how the load was asked for: "0.5x" of the capacity, or "5000/s".
	Name string `json:"name"`
	// Offered is the scheduled rate and Achieved the rate of outcomes over the measured part
	// (after the step's warmup), both in records/s.
	Offered  float64 `json:"offered"`
	Achieved float64 `json:"achieved"`
	// Publish is the publish latency (from the intended send time) and EndToEnd the latency
	// to the first poll, after the step's warmup.
	Publish  Percentiles `json:"publish"`
	EndToEnd Percentiles `json:"end_to_end"`
	// Errors counts errors by Kafka error name during the step.
	Errors map[string]int64 `json:"errors,omitempty"`
}

// Result is what the load of one configuration measured: ResultFile.
type Result struct {
	RunID  string   `json:"run_id"`
	Config string   `json:"config"`
	Driver string   `json:"driver"`
	Topics []string `json:"topics"`
	// Sent counts send invokes (producers' and, in mode transform, the outputs); Acked,
	// Failed and Indeterminate their outcomes (ok, fail,
	// info). acks=0 sends are indeterminate: the broker never answers.
	Sent          int64 `json:"sent"`
	Acked         int64 `json:"acked"`
	Failed        int64 `json:"failed"`
	Indeterminate int64 `json:"indeterminate"`
	// Polled and Processed count records consumers polled and processed (with repeats).
	Polled    int64 `json:"polled"`
	Processed int64 `json:"processed"`
	Commits   int64 `json:"commits"`
	// Drained counts distinct records of this run that the final drain read.
	Drained int64 `json:"drained"`
	// MaxRate is the highest sustainable rate found (producerRate 0), records/s.
	MaxRate float64 `json:"max_rate,omitempty"`
	// Errors counts errors by Kafka error name over the whole run.
	Errors map[string]int64 `json:"errors,omitempty"`
	// Elapsed is the producing time (warmup included).
	Elapsed time.Duration `json:"elapsed_ns"`
	// PublishLatency (from intended send time to outcome), PublishDelay (intended to
	// actual send) and EndToEnd (intended send to first poll), in microseconds, after warmup.
	PublishLatency *hdrhistogram.Histogram `json:"-"`
	PublishDelay   *hdrhistogram.Histogram `json:"-"`
	EndToEnd       *hdrhistogram.Histogram `json:"-"`
	Percentiles    map[string]Percentiles  `json:"percentiles"`
	Series         []Second                `json:"-"`
}

// Second is one point of the per-second series (SeriesFile).
type Second struct {
	// T is seconds since the run started, at the end of the interval.
	T float64 `json:"t"`
	// Sent, Acked, Failed, Indeterminate, Consumed count records in this second.
	Sent          int64 `json:"sent"`
	Acked         int64 `json:"acked"`
	Failed        int64 `json:"failed"`
	Indeterminate int64 `json:"indeterminate"`
	Consumed      int64 `json:"consumed"`
	// MsgsPerSec and MBPerSec are acknowledged throughput (MB = 10^6 bytes).
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
	// TargetRate is the producers' total scheduled rate (records/s).
	TargetRate float64 `json:"target_rate"`
	// P50Micros and P99Micros are publish latency percentiles in this second.
	P50Micros int64 `json:"p50_us"`
	P99Micros int64 `json:"p99_us"`
	// Errors counts errors by Kafka error name in this second.
	Errors map[string]int64 `json:"errors,omitempty"`
	// Lag is records between the partitions' end offsets and the slowest group's position.
	Lag int64 `json:"lag"`
}

// Percentiles summarises a histogram in microseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min_us"`
	Mean  float64 `json:"mean_us"`
	P50   int64   `json:"p50_us"`
	P90   int64   `json:"p90_us"`
	P99   int64   `json:"p99_us"`
	P999  int64   `json:"p999_us"`
	Max   int64   `json:"max_us"`
}

// Summarize returns h's percentiles.
func Summarize(h *hdrhistogram.Histogram) Percentiles {
	return Percentiles{
		Count: h.TotalCount(), Min: h.Min(), Mean: h.Mean(),
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), Max: h.Max(),
	}
}

// Resources is what a resource sampler recorded: ResourcesFile in a configuration folder.
type Resources struct {
	// Start is the wall-clock time of the first sample, RFC 3339.
	Start string `json:"start"`
	// Processes holds one series per target name.
	Processes map[string]*ProcessSeries `json:"processes"`
}

// ProcessSeries is one process's samples. All slices have the same length as T.
type ProcessSeries struct {
	// T is seconds since the sampler started.
	T []float64 `json:"t"`
	// Pid is the process id at each sample (0: down).
	Pid []int `json:"pid"`
	// CPU is CPU use in percent of one core over the last interval; RSS resident memory in
	// bytes; WriteBytes the bytes the process wrote to storage over the last interval.
	CPU        []float64 `json:"cpu_percent"`
	RSS        []int64   `json:"rss_bytes"`
	WriteBytes []int64   `json:"write_bytes"`
	// Metrics hold each scraped metric's value per sample; NaN-free: absent values are null
	// in JSON (nil pointer).
	Metrics map[string][]*float64 `json:"metrics,omitempty"`
}

// Names returns the process names in order.
func (r *Resources) Names() []string {
	ns := make([]string, 0, len(r.Processes))
	for n := range r.Processes {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}
