package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteSummaryJSON writes s as indented JSON to path.
func WriteSummaryJSON(path string, s *Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("reports: summary: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	return nil
}

// ReadSummary reads a summary.json, or the summary.json of a run directory.
func ReadSummary(path string) (*Summary, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, SummaryFile)
	}
	var s Summary
	ok, err := readJSON(path, &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("reports: %s does not exist", path)
	}
	if s.SchemaVersion < 1 || s.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("reports: %s: schema version %d, this kchaos reads 1 to %d", path, s.SchemaVersion, SchemaVersion)
	}
	return &s, nil
}

// WritePerfTable writes one line per configuration in the style of the final line of
// kafka-producer-perf-test ("N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms
// max latency, p50 ms 50th, ..."), followed by errors, anomalies and the verdict.
func WritePerfTable(w io.Writer, s *Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range s.Configs {
		l := c.PublishLatency
		if l == nil {
			l = &Latency{}
		}
		judged, info := c.splitAnomalies()
		anomalies := countsText("anomalies", judged)
		if len(info) > 0 {
			anomalies += " " + countsText("informational", info)
		}
		fmt.Fprintf(tw, "%s:\t%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, %.2f ms 50th, %.2f ms 99th, %.2f ms 99.9th.\t%s\t%s\t%s\n",
			c.Name, c.Counts.Sent, c.Throughput.MsgsPerSec, c.Throughput.MBPerSec, l.Mean, l.Max, l.P50, l.P99, l.P999,
			countsText("errors", c.Errors), anomalies, strings.ToUpper(c.Verdict))
	}
	return tw.Flush()
}

// countsText renders non-zero counts as "label [NAME n, ...]", or "label [none]".
// splitAnomalies returns the non-zero anomaly counts apart from the informational ones (see
// ConfigSummary.Informational), which judge nothing.
func (c *ConfigSummary) splitAnomalies() (judged, info map[string]int64) {
	judged, info = map[string]int64{}, map[string]int64{}
	for k, n := range c.Anomalies {
		switch {
		case n == 0:
		case c.Informational[k] != "":
			info[k] = n
		default:
			judged[k] = n
		}
	}
	return judged, info
}

func countsText(label string, m map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	return label + " [" + strings.Join(parts, ", ") + "]"
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

var benchUnsafe = regexp.MustCompile(`[\s]+`)

// BenchName is the benchstat name of a configuration: BenchmarkKchaos/config=NAME with
// whitespace removed.
func BenchName(config string) string {
	return "BenchmarkKchaos/config=" + benchUnsafe.ReplaceAllString(config, "")
}

// WriteBench writes one benchstat-compatible line per configuration: iterations 1, then
// msgs/s, MB/s, publish p50/p99/p99.9/max in ms (p50-ms ...), end-to-end p99 in ms, and the
// count of each anomaly found (lost-count ...).
func WriteBench(w io.Writer, s *Summary) error {
	for _, c := range s.Configs {
		var b strings.Builder
		fmt.Fprintf(&b, "%s\t1\t%.2f msgs/s\t%.4f MB/s", BenchName(c.Name), c.Throughput.MsgsPerSec, c.Throughput.MBPerSec)
		if l := c.PublishLatency; l != nil {
			fmt.Fprintf(&b, "\t%.3f p50-ms\t%.3f p99-ms\t%.3f p99.9-ms\t%.3f max-ms", l.P50, l.P99, l.P999, l.Max)
		}
		if l := c.EndToEnd; l != nil {
			fmt.Fprintf(&b, "\t%.3f e2e-p99-ms", l.P99)
		}
		for _, k := range sortedKeys(c.Anomalies) {
			if k == "unseen" || c.Anomalies[k] == 0 {
				continue
			}
			fmt.Fprintf(&b, "\t%d %s-count", c.Anomalies[k], k)
		}
		if _, err := fmt.Fprintln(w, b.String()); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
	}
	return nil
}
