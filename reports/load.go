package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/workloads"
)

// Files a configuration's folder holds, as kchaos run writes them.
const (
	HistoryFile   = rundir.HistoryFile
	ResultFile    = rundir.ResultFile
	VerdictFile   = rundir.VerdictFile
	SeriesFile    = rundir.SeriesFile
	ResourcesFile = rundir.ResourcesFile
	SummaryFile   = "summary.json"
	ReportFile    = "report.html"
	BenchFile     = "bench.txt"
)

// Run is a run directory loaded into memory.
type Run struct {
	Dir     string
	Summary Summary
	// Configs hold what each configuration's plots need, in Summary.Configs order.
	Configs []*ConfigData
}

// ConfigData is one configuration's data beyond its summary.
type ConfigData struct {
	Summary  *ConfigSummary
	Header   *history.Run
	Timeline *Timeline
	// Publish and EndToEnd are the whole-run latency histograms in microseconds: the load
	// generator's HdrHistogram logs when present, else computed from the history.
	Publish, EndToEnd *hdrhistogram.Histogram
	// Resources are the sampler's series, nil when none were recorded.
	Resources *rundir.Resources
	// Series are the checker's unseen and realtime lag series, nil in older verdicts.
	Series *checker.Series
}

// Load reads every configuration folder of the run directory dir (a folder holding
// history.jsonl: dir's children, and the children of its trial folders, see
// rundir.RunInfo) and builds the summary. version is the kchaos version recorded in
// Summary.Versions. A missing verdict.json is computed with the checker; a missing
// result.json leaves counts and latencies to what the history shows.
func Load(dir, version string) (*Run, error) {
	var info *rundir.RunInfo
	var ri rundir.RunInfo
	if ok, err := readJSON(filepath.Join(dir, rundir.RunFile), &ri); err != nil {
		return nil, err
	} else if ok {
		info = &ri
	}
	return LoadTrials(dir, version, info, nil)
}

// LoadTrials is Load with the run's RunInfo given (nil: none) and, when trials is not nil,
// only the configuration folders of those trials read.
func LoadTrials(dir, version string, info *rundir.RunInfo, trials []int) (*Run, error) {
	folders, err := configFolders(dir)
	if err != nil {
		return nil, err
	}
	run := &Run{Dir: dir}
	multi := false
	for _, f := range folders {
		multi = multi || f.trial > 1
	}
	for _, f := range folders {
		if trials != nil && !slices.Contains(trials, f.trial) {
			continue
		}
		cd, err := loadConfig(dir, f.rel)
		if err != nil {
			return nil, err
		}
		cs := cd.Summary
		cs.Trial = f.trial
		if cs.Config == "" {
			cs.Config = cs.Name
		}
		if multi || (info != nil && info.MaxTrials > 1) {
			cs.Name = fmt.Sprintf("%s #%d", cs.Config, f.trial)
		}
		run.Configs = append(run.Configs, cd)
	}
	if len(run.Configs) == 0 {
		return nil, fmt.Errorf("reports: no configuration folder with %s under %s", HistoryFile, dir)
	}
	// Run order: trial by trial, by the start time in each history header.
	sort.SliceStable(run.Configs, func(i, j int) bool {
		a, b := run.Configs[i], run.Configs[j]
		if a.Summary.Trial != b.Summary.Trial {
			return a.Summary.Trial < b.Summary.Trial
		}
		return startOf(a) < startOf(b)
	})
	s := &run.Summary
	s.SchemaVersion = SchemaVersion
	s.Generated = time.Now().UTC().Format(time.RFC3339)
	s.Versions = versions(version)
	for _, cd := range run.Configs {
		s.Configs = append(s.Configs, *cd.Summary)
		s.Trials = max(s.Trials, cd.Summary.Trial)
	}
	for i, cd := range run.Configs {
		cd.Summary = &s.Configs[i]
	}
	if h := run.Configs[0].Header; h != nil {
		s.Workload = h.Params["workload"]
	}
	if info != nil {
		s.Stopped, s.Seconds = info.Stopped, info.Seconds
		if s.Workload == "" {
			s.Workload = info.Workload
		}
	}
	s.Claims = JudgeClaims(run.Configs, info)
	s.Clients = CompareClients(s)
	clientVersions(s.Versions, s)
	return run, nil
}

// configFolder is a configuration folder of a run: its path relative to the run directory
// and its trial.
type configFolder struct {
	rel   string
	trial int
}

// configFolders lists the configuration folders under dir: its children holding a history
// (trial 1) and those of its trial-N folders (trial N).
func configFolders(dir string) ([]configFolder, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	var out []configFolder
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if history.Exists(filepath.Join(dir, e.Name(), HistoryFile)) {
			out = append(out, configFolder{rel: e.Name(), trial: 1})
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "trial-"))
		if err != nil || !strings.HasPrefix(e.Name(), "trial-") || n < 1 {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reports: %w", err)
		}
		for _, c := range sub {
			if c.IsDir() && history.Exists(filepath.Join(dir, e.Name(), c.Name(), HistoryFile)) {
				out = append(out, configFolder{rel: filepath.Join(e.Name(), c.Name()), trial: n})
			}
		}
	}
	return out, nil
}

func startOf(cd *ConfigData) string {
	if cd.Header == nil {
		return ""
	}
	return cd.Header.Start
}

func loadConfig(runDir, name string) (*ConfigData, error) {
	dir := filepath.Join(runDir, name)
	tl, err := ReadTimeline(filepath.Join(dir, HistoryFile))
	if err != nil {
		return nil, err
	}
	cd := &ConfigData{Header: tl.Header, Timeline: tl, Publish: tl.Publish, EndToEnd: tl.EndToEnd}
	cs := &ConfigSummary{Name: name, Dir: name, Params: map[string]string{}, Errors: map[string]int64{}, Anomalies: map[string]int64{},
		Faults: []Fault{}, Guarantees: []Guarantee{}}
	cd.Summary = cs
	if h := tl.Header; h != nil {
		cs.Name, cs.RunID, cs.Seed, cs.Params = cmp(h.Config, name), h.RunID, h.Seed, HeaderParams(h)
		cs.Config = cs.Name
	}

	var res rundir.Result
	haveResult, err := readJSON(filepath.Join(dir, ResultFile), &res)
	if err != nil {
		return nil, err
	}
	if haveResult {
		cs.Counts = Counts{Sent: res.Sent, Acked: res.Acked, Failed: res.Failed, Indeterminate: res.Indeterminate, Drained: res.Drained, Polled: res.Polled}
		cs.Throughput.Seconds = res.Elapsed.Seconds()
		for k, v := range res.Errors {
			cs.Errors[k] = v
		}
		for hk, dst := range map[string]**Latency{"publish-latency": &cs.PublishLatency, "end-to-end": &cs.EndToEnd, "publish-delay": &cs.PublishDelay} {
			if p, ok := res.Percentiles[hk]; ok && p.Count > 0 {
				*dst = &Latency{Count: p.Count, Mean: p.Mean / 1e3, P50: float64(p.P50) / 1e3, P99: float64(p.P99) / 1e3,
					P999: float64(p.P999) / 1e3, Max: float64(p.Max) / 1e3}
			}
		}
	} else {
		for _, p := range tl.Points {
			cs.Counts.Sent += p.Sent
			cs.Counts.Acked += p.Acked
			cs.Counts.Failed += p.Errors
		}
		cs.Throughput.Seconds = float64(len(tl.Points))
		cs.Errors = tl.Errors
		cs.PublishLatency, cs.EndToEnd = latencyOf(tl.Publish), latencyOf(tl.EndToEnd)
	}
	for file, dst := range map[string]**hdrhistogram.Histogram{"publish-latency.hlog": &cd.Publish, "end-to-end.hlog": &cd.EndToEnd} {
		h, err := readHlog(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		if h != nil {
			*dst = h
		}
	}
	fillThroughput(cs)

	var series []rundir.Second
	if _, err := readJSON(filepath.Join(dir, SeriesFile), &series); err != nil {
		return nil, err
	}
	for _, s := range series {
		if i := int(s.T+0.5) - 1; i >= 0 && i < len(tl.Points) {
			tl.Points[i].Lag = s.Lag
		}
	}

	var v checker.Result
	haveVerdict, err := readJSON(filepath.Join(dir, VerdictFile), &v)
	if err != nil {
		return nil, err
	}
	if !haveVerdict {
		r, err := checker.CheckFile(filepath.Join(dir, HistoryFile))
		if err != nil {
			return nil, fmt.Errorf("reports: %w", err)
		}
		v = *r
	}
	fillVerdict(cs, &v, runDir)
	if cs.Params["acks"] != "0" {
		cs.Impacts = faultImpacts(cs.Faults, tl)
	}
	cs.Backlog = backlogOf(series, cs.Throughput.Seconds)
	cd.Series = v.Series

	var perf rundir.Performance
	havePerf, err := readJSON(filepath.Join(dir, rundir.PerformanceFile), &perf)
	if err != nil {
		return nil, err
	}
	if havePerf {
		cs.Performance = performanceOf(&perf)
	}

	var rs rundir.Resources
	haveRes, err := readJSON(filepath.Join(dir, ResourcesFile), &rs)
	if err != nil {
		return nil, err
	}
	if haveRes {
		cd.Resources = &rs
	}
	return cd, nil
}

// backlogOf reads the consumers' lag after the producers stopped (stop seconds into the
// run) from the per-second series; nil without a lag series.
func backlogOf(series []rundir.Second, stop float64) *Backlog {
	if len(series) == 0 || stop <= 0 {
		return nil
	}
	b := &Backlog{Stop: stop, Drain: -1, AtStop: -1}
	for _, s := range series {
		b.Until = s.T
		if s.Lag < 0 {
			continue // the end offsets could not be read that second
		}
		b.MaxLag = max(b.MaxLag, s.Lag)
		if s.T < stop {
			continue
		}
		if b.AtStop < 0 {
			b.AtStop = s.Lag
		}
		if s.Lag == 0 && b.Drain < 0 {
			b.Drain = s.T - stop
		}
	}
	b.AtStop = max(b.AtStop, 0)
	return b
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fillThroughput derives rates from counts and the message size.
func fillThroughput(cs *ConfigSummary) {
	t := &cs.Throughput
	if sz, err := workloads.ParseSize(cs.Params["message_size"]); err == nil {
		t.MessageBytes = int64(sz)
	}
	if t.Seconds <= 0 {
		return
	}
	t.SentPerSec = float64(cs.Counts.Sent) / t.Seconds
	t.MsgsPerSec = float64(cs.Counts.Acked) / t.Seconds
	if cs.Params["acks"] == "0" {
		t.MsgsPerSec = t.SentPerSec
	}
	t.MBPerSec = t.MsgsPerSec * float64(t.MessageBytes) / 1e6
}

func fillVerdict(cs *ConfigSummary, v *checker.Result, runDir string) {
	cs.Verdict = v.Verdict
	for _, n := range checker.AnomalyNames {
		cs.Anomalies[n] = v.Count(n)
		if cs.Anomalies[n] == 0 {
			continue
		}
		why := checker.Informational[n] // verdicts written before the label carry none
		if a := v.Anomalies[n]; a != nil && a.Informational != "" {
			why = a.Informational
		}
		if why != "" {
			if cs.Informational == nil {
				cs.Informational = map[string]string{}
			}
			cs.Informational[n] = why
		}
	}
	for _, g := range v.Guarantees {
		cs.Guarantees = append(cs.Guarantees, Guarantee{Name: g.Name, Claim: g.Claim, Claimed: g.Claimed, Reason: g.Reason,
			Violations: g.Violations, Forbids: g.Forbids, Status: g.Status, Note: g.Note})
	}
	for _, f := range v.Faults {
		cs.Faults = append(cs.Faults, Fault{ID: f.ID, Kind: f.Kind, Target: f.Target, Nodes: f.Nodes,
			Start: float64(f.Start) / 1e9, End: float64(f.End) / 1e9, Open: f.Open})
	}
	cs.AckedLeaderOnly = v.Stats.AckedLeaderOnly
	cs.UnacknowledgedUnread, cs.ReadInversions = v.Stats.UnacknowledgedUnread, v.Stats.ReadInversions
	cs.Groups = v.Groups
	for n, a := range v.Anomalies {
		if a != nil && (len(a.Faults) > 0 || len(a.Causes) > 0) {
			if cs.Attribution == nil {
				cs.Attribution = map[string]Attribution{}
			}
			cs.Attribution[n] = Attribution{Faults: a.Faults, Causes: a.Causes}
		}
	}
	if l := v.Linearizable; l != nil {
		cs.Linearizability = l.Result
		for _, p := range l.Partitions {
			lp := LinearPartition{Topic: p.Topic, Partition: p.Partition, Result: p.Result, Reason: p.Reason, Windows: p.Windows,
				Ops: p.Ops, Seconds: p.Elapsed.Seconds(), Offsets: p.Offsets}
			if p.Visualization != "" {
				lp.Visualization = visualizationPath(runDir, cs.Dir, p.Visualization)
				cs.Visualizations = append(cs.Visualizations, lp.Visualization)
			}
			cs.LinearPartitions = append(cs.LinearPartitions, lp)
		}
	}
}

// visualizationPath returns the path of a porcupine visualisation relative to the run
// directory: found by name in the configuration's linearizability folder (kchaos check
// writes it there, under whatever path it was given), else the path verdict.json names.
func visualizationPath(runDir, configDir, path string) string {
	rel := filepath.Join(configDir, "linearizability", filepath.Base(path))
	if _, err := os.Stat(filepath.Join(runDir, rel)); err == nil {
		return filepath.ToSlash(rel)
	}
	if r, err := filepath.Rel(runDir, path); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return path
}

// HeaderParams flattens a history header into strings: the settings under Kafka's names
// (acks, enable.idempotence, min.insync.replicas, ...) and the header's other params.
func HeaderParams(h *history.Run) map[string]string {
	p := map[string]string{}
	for k, v := range h.Params {
		p[k] = v
	}
	p["acks"] = h.Acks
	p["enable.idempotence"] = strconv.FormatBool(h.Idempotent)
	p["transactional"] = strconv.FormatBool(h.Transactional)
	p["max.in.flight"] = strconv.Itoa(h.MaxInFlight)
	p["retries"] = strconv.Itoa(h.Retries)
	p["isolation.level"] = h.IsolationLevel
	p["commit_mode"] = h.CommitMode
	p["replication.factor"] = strconv.Itoa(h.ReplicationFactor)
	p["min.insync.replicas"] = strconv.Itoa(h.MinInsyncReplicas)
	p["unclean.leader.election.enable"] = strconv.FormatBool(h.UncleanElection)
	p["flush.messages"] = strconv.FormatInt(h.FlushMessages, 10)
	p["driver"] = h.Driver
	return p
}

// readJSON decodes path into v; false when the file does not exist.
func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reports: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("reports: %s: %w", path, err)
	}
	return true, nil
}

// versions lists kchaos, Go and the client and plot libraries this binary was built with.
func versions(kchaos string) map[string]string {
	v := map[string]string{"kchaos": kchaos, "go": runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, d := range bi.Deps {
		for _, want := range []string{"github.com/twmb/franz-go", "github.com/IBM/sarama", "github.com/segmentio/kafka-go",
			"github.com/confluentinc/confluent-kafka-go/v2", "gonum.org/v1/plot",
			"github.com/anishathalye/porcupine", "github.com/HdrHistogram/hdrhistogram-go"} {
			if d.Path == want {
				v[d.Path] = d.Version
			}
		}
	}
	return v
}
