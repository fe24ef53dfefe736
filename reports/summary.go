// Package reports turns a kchaos run directory into what people read: summary.json (a
// documented, versioned schema), a kafka-producer-perf-test style text table, benchstat
// lines, gonum/plot charts (PNG and SVG) by config and over time, and one self-contained
// report.html. It also compares two runs (Compare) and samples broker resources during a run
// (Sampler). It never re-runs anything: its inputs are the files a run left behind.
package reports

import _ "embed"

// SummarySchema is the JSON Schema (draft 2020-12) of summary.json, summary.schema.json in
// this package's folder.
//
//go:embed summary.schema.json
var SummarySchema []byte

// SchemaVersion is the version of summary.json written by this package. It changes when a
// field is added (the schema admits no field it does not name), removed or changes meaning.
// Version 2 added per-partition linearizability and informational anomalies, 3 performance
// and fault impacts, 4 clients; this package reads every version up to its own.
const SchemaVersion = 4

// Summary is summary.json: everything a run measured, one entry per configuration.
type Summary struct {
	// SchemaVersion is SchemaVersion at the time of writing.
	SchemaVersion int `json:"schema_version"`
	// Workload is the workload name (from the first config's header).
	Workload string `json:"workload"`
	// Generated is the wall-clock time the summary was written, RFC 3339.
	Generated string `json:"generated"`
	// Versions are the kchaos version, the Go version and the client libraries' versions.
	Versions map[string]string `json:"versions"`
	// Configs are the configurations in run order (folder name order).
	Configs []ConfigSummary `json:"configs"`
	// Claims answer each claim of CLAIMS.md from the configs above.
	Claims []ClaimResult `json:"claims"`
	// Clients compare the configurations that differ only in their driver (a matrix over
	// driver): throughput, latencies, errors and anomalies of each client library under the
	// same seeded faults. Empty when no two drivers ran the same configuration.
	Clients []ClientComparison `json:"clients,omitempty"`
}

// ConfigSummary is one configuration of the matrix.
type ConfigSummary struct {
	// Name is the configuration name ("acks=all,batch=16KiB"); Dir its folder in the run.
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// RunID and Seed identify the run; Seed drives every random choice.
	RunID string `json:"run_id"`
	Seed  int64  `json:"seed"`
	// Params are the configuration's parameters as strings: the history header's producer,
	// topic and consumer settings plus its free-form params.
	Params map[string]string `json:"params"`
	// Counts are the send outcomes and consumer counts.
	Counts Counts `json:"counts"`
	// Throughput is over the producing time.
	Throughput Throughput `json:"throughput"`
	// PublishLatency is from intended send time to the send's outcome; EndToEnd from intended
	// send time to the first poll that returned the record; PublishDelay from intended to
	// actual send. Nil when nothing was measured.
	PublishLatency *Latency `json:"publish_latency,omitempty"`
	EndToEnd       *Latency `json:"end_to_end,omitempty"`
	PublishDelay   *Latency `json:"publish_delay,omitempty"`
	// Errors counts failed and indeterminate operations by Kafka error name.
	Errors map[string]int64 `json:"errors"`
	// Anomalies counts every checker anomaly by name (zero counts included).
	Anomalies map[string]int64 `json:"anomalies"`
	// Verdict is the checker's overall verdict: pass, fail or unknown.
	Verdict string `json:"verdict"`
	// Guarantees are the checker's verdicts on each delivery guarantee.
	Guarantees []Guarantee `json:"guarantees"`
	// Faults are the fault windows the chaos controller recorded.
	Faults []Fault `json:"faults"`
	// Impacts are what each fault cost the producers (schema v3); none for acks=0.
	Impacts []Impact `json:"fault_impacts,omitempty"`
	// AckedLeaderOnly counts acks=all sends acknowledged while the ISR was the leader alone.
	AckedLeaderOnly int64 `json:"acked_leader_only"`
	// Linearizability is the porcupine result (ok, illegal, unknown) when it ran; Visualizations
	// are the paths of its HTML visualisations, relative to the run directory.
	// Performance is the cost measured with no fault in force (schema v3), when the workload
	// asked for it.
	Performance     *Performance `json:"performance,omitempty"`
	Linearizability string       `json:"linearizability,omitempty"`
	Visualizations  []string     `json:"visualizations,omitempty"`
	// LinearPartitions are porcupine's verdicts partition by partition, when it ran.
	LinearPartitions []LinearPartition `json:"linear_partitions,omitempty"`
	// Informational names each anomaly counted in Anomalies that breaks nothing Kafka
	// promises (checker.Informational), with the reason, when its count is not zero.
	Informational map[string]string `json:"informational,omitempty"`
}

// LinearPartition is porcupine's verdict on one partition of a configuration.
type LinearPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Result is ok, illegal or unknown; Reason says why when it is not ok.
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
	// Windows is how many independent searches the partition took, Ops the operations they
	// checked, Seconds the time they took.
	Windows int     `json:"windows"`
	Ops     int     `json:"ops"`
	Seconds float64 `json:"seconds"`
	// Offsets are the first and last offset of the window that decided an illegal or unknown
	// verdict.
	Offsets []int64 `json:"offsets,omitempty"`
	// Visualization is the porcupine visualisation of an illegal partition, annotated with the
	// fault windows, relative to the run directory.
	Visualization string `json:"visualization,omitempty"`
}

// Counts are a configuration's operation counts.
type Counts struct {
	// Sent counts send invokes; Acked, Failed, Indeterminate their outcomes.
	Sent          int64 `json:"sent"`
	Acked         int64 `json:"acked"`
	Failed        int64 `json:"failed"`
	Indeterminate int64 `json:"indeterminate"`
	// Drained counts distinct records the final drain read.
	Drained int64 `json:"drained"`
	// Polled counts records consumers polled (with repeats).
	Polled int64 `json:"polled"`
}

// Throughput is a configuration's rate over its producing time (warmup included).
type Throughput struct {
	// Seconds is the producing time.
	Seconds float64 `json:"seconds"`
	// MsgsPerSec is acknowledged records per second; for acks=0, where nothing is
	// acknowledged, it is sent records per second.
	MsgsPerSec float64 `json:"msgs_per_sec"`
	// SentPerSec is sent records per second.
	SentPerSec float64 `json:"sent_per_sec"`
	// MBPerSec is MsgsPerSec times the message size, in MB (10^6 bytes) per second.
	MBPerSec float64 `json:"mb_per_sec"`
	// MessageBytes is the configured message size in bytes (0 when unknown).
	MessageBytes int64 `json:"message_bytes"`
}

// Latency is a latency distribution summarised in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Guarantee is the checker's verdict on one delivery guarantee.
type Guarantee struct {
	Name       string `json:"name"`
	Claim      string `json:"claim"`
	Claimed    bool   `json:"claimed"`
	Reason     string `json:"reason"`
	Violations int64  `json:"violations"`
	// Status is pass, fail, unknown or not-claimed.
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// Fault is one fault window; times are seconds since the run started.
type Fault struct {
	ID     int64   `json:"id"`
	Kind   string  `json:"kind"`
	Target string  `json:"target,omitempty"`
	Nodes  []int32 `json:"nodes,omitempty"`
	Start  float64 `json:"start_s"`
	End    float64 `json:"end_s"`
	// Open is true when the fault never ended in the history.
	Open bool `json:"open,omitempty"`
}

// Claim statuses.
const (
	ClaimHeld         = "held"
	ClaimDidNotHold   = "did not hold"
	ClaimNotExercised = "not exercised"
	ClaimUnknown      = "unknown"
)

// ClaimResult is the run's answer to one claim of CLAIMS.md.
type ClaimResult struct {
	// ID is the claim's number in CLAIMS.md; Text states it plainly.
	ID   int    `json:"id"`
	Text string `json:"text"`
	// Status is held, did not hold, not exercised or unknown.
	Status string `json:"status"`
	// Measured says what the run measured for it; Configs are the configurations that
	// exercised it.
	Measured string   `json:"measured"`
	Configs  []string `json:"configs,omitempty"`
}

// Config returns the configuration with the given name, or nil.
func (s *Summary) Config(name string) *ConfigSummary {
	for i := range s.Configs {
		if s.Configs[i].Name == name {
			return &s.Configs[i]
		}
	}
	return nil
}
