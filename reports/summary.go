// Package reports turns a kchaos run directory into what people read: summary.json (a
// documented, versioned schema), a kafka-producer-perf-test style text table, benchstat
// lines, gonum/plot charts (PNG and SVG) by config and over time, and one self-contained
// report.html. It also compares two runs (Compare) and samples broker resources during a run
// (Sampler). It never re-runs anything: its inputs are the files a run left behind.
package reports

import (
	_ "embed"

	"github.com/kchaos/kchaos/checker"
)

// SummarySchema is the JSON Schema (draft 2020-12) of summary.json, summary.schema.json in
// this package's folder.
//
//go:embed summary.schema.json
var SummarySchema []byte

// SchemaVersion is the version of summary.json written by this package. It changes when a
// field is added (the schema admits no field it does not name), removed or changes meaning.
// Version 2 added per-partition linearizability and informational anomalies, 3 performance
// and fault impacts, 4 clients, 5 claims as experiments (statuses held, refuted,
// unknown, not exercised) with trials;
// this package reads every version up to its own.
const SchemaVersion = 5

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
	// Configs are the configurations in run order (folder name order), trial after trial.
	Configs []ConfigSummary `json:"configs"`
	// Claims answer each claim of CLAIMS.md from the contrasts the workload declares
	// (schema v5: statuses held, refuted, unknown, not exercised).
	Claims []ClaimResult `json:"claims"`
	// Clients compare the configurations that differ only in their driver (a matrix over
	// driver): throughput, latencies, errors and anomalies of each client library under the
	// same seeded faults. Empty when no two drivers ran the same configuration.
	Clients []ClientComparison `json:"clients,omitempty"`
	// Trials is how many trials ran (schema v5), and Stopped why no more did.
	Trials  int    `json:"trials"`
	Stopped string `json:"stopped,omitempty"`
	// Seconds is the wall time of the run, when run.json recorded it.
	Seconds float64 `json:"seconds,omitempty"`
}

// ConfigSummary is one configuration of the matrix.
type ConfigSummary struct {
	// Name names the configuration in the run: its Config, followed by " #N" for trial N
	// when the run had more than one trial. Dir is its folder in the run.
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// Config is the matrix combination ("acks=all,batchSize=16KiB") and Trial the trial it
	// ran in, from 1 (schema v5).
	Config string `json:"config"`
	Trial  int    `json:"trial"`
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
	// UnacknowledgedUnread and ReadInversions are the checker's counts of those names
	// (checker.Stats; schema v5).
	UnacknowledgedUnread int64 `json:"unacknowledged_unread"`
	ReadInversions       int64 `json:"read_inversions"`
	// Attribution says, for each anomaly found, which faults and which mechanisms caused
	// its instances (checker.Anomaly.Faults and Causes; schema v5).
	Attribution map[string]Attribution `json:"attribution,omitempty"`
	// Groups are the consumer groups' generations, exclusive reads and rebalances
	// (checker.GroupStats; schema v5).
	Groups []checker.GroupStats `json:"groups,omitempty"`
	// Backlog is the consumers' lag once the producers stopped (schema v5).
	Backlog *Backlog `json:"backlog,omitempty"`
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

// Attribution counts an anomaly's instances by the kinds of the faults around them
// ("kill+partition", or "none") and by the mechanism that caused them ("retry",
// "truncation"), as the checker found.
type Attribution struct {
	Faults map[string]int64 `json:"faults,omitempty"`
	Causes map[string]int64 `json:"causes,omitempty"`
}

// Backlog is what the consumers had left to read once the producers stopped.
type Backlog struct {
	// Stop is when the producers stopped, seconds since the run started.
	Stop float64 `json:"stop_s"`
	// MaxLag is the largest lag of the run and AtStop the lag when the producers stopped,
	// in records (the slowest group's).
	MaxLag int64 `json:"max_lag"`
	AtStop int64 `json:"lag_at_stop"`
	// Drain is the seconds from Stop until the lag first read zero; -1 when it never did
	// while the consumers ran (they stop after the load generator's catch-up timeout).
	Drain float64 `json:"drain_s"`
	// Until is the last second the series covers, since the run started.
	Until float64 `json:"until_s"`
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
	// Forbids are the anomalies that break it (schema v5).
	Forbids []string `json:"forbids,omitempty"`
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

// Claim statuses (schema v5).
const (
	// ClaimHeld: the unsafe side showed the predicted anomaly or cost, the safe side never.
	ClaimHeld = "held"
	// ClaimRefuted: the safe side showed it.
	ClaimRefuted = "refuted"
	// ClaimUnknown: the unsafe side never showed it within the trials (Tried says what ran).
	ClaimUnknown = "unknown"
	// ClaimNotExercised: no configuration of the run was on either side.
	ClaimNotExercised = "not exercised"
)

// ClaimResult is the run's answer to one claim of CLAIMS.md.
type ClaimResult struct {
	// ID is the claim's number in CLAIMS.md; Text states it plainly.
	ID   int    `json:"id"`
	Text string `json:"text"`
	// Status is held, refuted, unknown or not exercised.
	Status string `json:"status"`
	// Measured is the evidence in one line: each side's counts and trials.
	Measured string `json:"measured"`
	// Unsafe and Safe are the two sides (schema v5); nil when the claim has no sides.
	Unsafe *SideResult `json:"unsafe,omitempty"`
	Safe   *SideResult `json:"safe,omitempty"`
	// Pairs are the pairwise comparisons of a performance claim (schema v5).
	Pairs []PairResult `json:"pairs,omitempty"`
	// Trials is how many trials ran the claim's configurations.
	Trials int `json:"trials"`
	// Tried says, for an unknown claim, what ran without showing the anomaly.
	Tried string `json:"tried,omitempty"`
	// Pos is where the workload file declares the claim.
	Pos string `json:"pos,omitempty"`
	// Configs are the configurations that took part.
	Configs []string `json:"configs,omitempty"`
}

// SideResult is what one side of a claim showed.
type SideResult struct {
	// Match is the side's selection as the workload writes it ("acks=1").
	Match string `json:"match"`
	// Configs are the side's configurations (matrix names).
	Configs []string `json:"configs"`
	// Observed is the number of trials in which some configuration of the side showed the
	// claim's anomaly, of Trials.
	Observed int `json:"observed"`
	Trials   int `json:"trials"`
	// Count is the anomaly's count over the side's configurations and trials.
	Count int64 `json:"count"`
	// Evidence lists what each configuration showed, trial by trial.
	Evidence []string `json:"evidence"`
}

// PairResult compares two configurations that differ in one setting (claim 7).
type PairResult struct {
	// Setting is what differs ("acks 1 → all"); Weaker and Stronger name the configurations
	// (the claim predicts Stronger is slower).
	Setting  string `json:"setting"`
	Weaker   string `json:"weaker"`
	Stronger string `json:"stronger"`
	// Status is held, refuted or unknown for this pair; Measured the numbers.
	Status   string `json:"status"`
	Measured string `json:"measured"`
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
