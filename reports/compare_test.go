package reports

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// clone deep-copies a summary through JSON, as a second run's summary.json would arrive.
func clone(t *testing.T, s *Summary) *Summary {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out Summary
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestCompareIdenticalPasses(t *testing.T) {
	_, run := generated(t)
	c := Compare(&run.Summary, clone(t, &run.Summary), DefaultThresholds)
	if c.Regressed() {
		var b bytes.Buffer
		_ = WriteComparison(&b, c)
		t.Fatalf("identical runs regressed:\n%s", b.String())
	}
	if len(c.Changes) < 3*6 {
		t.Errorf("%d changes compared, want every metric of every config", len(c.Changes))
	}
}

func TestCompareFlagsPlantedRegressions(t *testing.T) {
	_, run := generated(t)
	cur := clone(t, &run.Summary)
	cur.Config("acks=1").Throughput.MsgsPerSec *= 0.5 // throughput drop of 50%
	p99 := &cur.Config("acks=all").PublishLatency.P99
	*p99 = max(2, *p99*3)                           // p99 tripled, above the 1 ms floor
	cur.Config("acks=0").Anomalies["duplicate"] = 2 // a new anomaly
	cur.Config("acks=1").Anomalies["G0"] = 5        // new, but informational: judges nothing
	// Within thresholds: a 5% throughput drop and a faster p99 are not regressions.
	cur.Config("acks=all").Throughput.MsgsPerSec *= 0.95
	cur.Config("acks=1").PublishLatency.P99 *= 0.5

	c := Compare(&run.Summary, cur, DefaultThresholds)
	flagged := map[string]bool{}
	for _, ch := range c.Changes {
		if ch.Regression {
			flagged[ch.Config+" "+ch.Metric] = true
		}
	}
	want := []string{"acks=1 msgs/s", "acks=all publish p99 ms", "acks=0 anomaly duplicate"}
	for _, w := range want {
		if !flagged[w] {
			t.Errorf("%s not flagged", w)
		}
	}
	if len(flagged) != len(want) || !c.Regressed() {
		t.Errorf("flagged %v, want exactly %v", flagged, want)
	}
	var b bytes.Buffer
	if err := WriteComparison(&b, c); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "REGRESSION"); n != 3 {
		t.Errorf("%d REGRESSION lines, want 3:\n%s", n, b.String())
	}

	// Looser thresholds accept the throughput drop and the p99 rise, never a new anomaly.
	loose := Compare(&run.Summary, cur, Thresholds{ThroughputDrop: 0.6, P99Rise: 10, P99FloorMs: 1})
	for _, ch := range loose.Changes {
		if ch.Regression && ch.Metric != "anomaly duplicate" {
			t.Errorf("loose thresholds flagged %s %s", ch.Config, ch.Metric)
		}
	}
	if !loose.Regressed() {
		t.Error("a new anomaly must regress whatever the thresholds")
	}

	// A configuration missing from the new run is a regression.
	cur2 := clone(t, &run.Summary)
	cur2.Configs = cur2.Configs[:2]
	if c := Compare(&run.Summary, cur2, DefaultThresholds); !c.Regressed() || len(c.Missing) != 1 {
		t.Errorf("missing config: regressed %v, missing %v", c.Regressed(), c.Missing)
	}
}

// TestComparePerformance: a capacity drop and a p99 rise at a common offered load past the
// default thresholds are regressions; the same summary compared with itself is not.
func TestComparePerformance(t *testing.T) {
	perf := func(capacity, p99 float64) *Summary {
		return &Summary{Configs: []ConfigSummary{{Name: "c", Verdict: "pass", Anomalies: map[string]int64{},
			Performance: &Performance{Capacity: capacity, Points: []LoadPoint{{Name: "5000/s", Offered: 5000, Achieved: 5000,
				Publish: &Latency{P50: 2, P99: p99}}}}}}}
	}
	base := perf(60000, 10)
	if c := Compare(base, base, DefaultThresholds); c.Regressed() {
		t.Fatalf("a run compared with itself regressed: %+v", c.Changes)
	}
	for _, tc := range []struct {
		name        string
		cur         *Summary
		wantMetrics []string
	}{
		{"capacity drop", perf(40000, 10), []string{"capacity records/s"}},
		{"p99 rise at load", perf(60000, 30), []string{"publish p99 ms at 5000/s"}},
		{"within thresholds", perf(57000, 11), nil},
	} {
		c := Compare(base, tc.cur, DefaultThresholds)
		var got []string
		for _, ch := range c.Changes {
			if ch.Regression {
				got = append(got, ch.Metric)
			}
		}
		if !slices.Equal(got, tc.wantMetrics) {
			t.Errorf("%s: regressions %v, want %v", tc.name, got, tc.wantMetrics)
		}
	}
}
