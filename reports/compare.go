package reports

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/kchaos/kchaos/checker"
)

// Thresholds decide which changes between two runs are regressions.
type Thresholds struct {
	// ThroughputDrop is the largest tolerated relative drop of msgs/s; default 0.10 (10%).
	ThroughputDrop float64
	// P99Rise is the largest tolerated relative rise of publish and end-to-end p99 latency;
	// default 0.25 (25%).
	P99Rise float64
	// P99FloorMs ignores p99 rises whose new value is below this many milliseconds (noise on
	// sub-millisecond latencies); default 1.
	P99FloorMs float64
	// CapacityDrop is the largest tolerated relative drop of the capacity measured with no
	// fault in force; default 0.10.
	CapacityDrop float64
	// LoadP99Rise is the largest tolerated relative rise of the publish p99 at an offered load
	// both runs measured (same name: "0.5x" or "5000/s"); default 0.25, with P99FloorMs.
	LoadP99Rise float64
}

// DefaultThresholds are the thresholds kchaos compare uses unless told otherwise.
var DefaultThresholds = Thresholds{ThroughputDrop: 0.10, P99Rise: 0.25, P99FloorMs: 1, CapacityDrop: 0.10, LoadP99Rise: 0.25}

// Change is one metric of one configuration compared between two runs.
type Change struct {
	Config string
	Metric string
	Base   float64
	New    float64
	// Delta is (New − Base) / Base; ±Inf when Base is 0 and New is not, 0 when both are.
	Delta float64
	// Regression marks a change past its threshold, or any new anomaly.
	Regression bool
	Note       string
}

// Comparison is the result of Compare.
type Comparison struct {
	Changes []Change
	// Missing are configurations of base absent from new; Added the reverse.
	Missing, Added []string
}

// Regressed reports whether any change is a regression or a configuration disappeared.
func (c *Comparison) Regressed() bool {
	if len(c.Missing) > 0 {
		return true
	}
	for _, ch := range c.Changes {
		if ch.Regression {
			return true
		}
	}
	return false
}

func delta(base, cur float64) float64 {
	switch {
	case base == cur:
		return 0
	case base == 0:
		return math.Inf(1) * math.Copysign(1, cur)
	}
	return (cur - base) / base
}

// Compare compares every configuration present in both summaries: throughput (a drop past
// ThroughputDrop regresses), the capacity with no fault in force (a drop past CapacityDrop
// regresses) and the publish latency at each offered load both measured (a p99 rise past
// LoadP99Rise regresses), publish and end-to-end p50/p99/p99.9/max (a p99 rise past P99Rise
// regresses), every anomaly count (any rise from zero regresses: a new anomaly, unless it is
// informational, see checker.Informational) and the verdict (pass to anything else regresses).
func Compare(base, cur *Summary, th Thresholds) *Comparison {
	out := &Comparison{}
	for _, b := range base.Configs {
		n := cur.Config(b.Name)
		if n == nil {
			out.Missing = append(out.Missing, b.Name)
			continue
		}
		add := func(metric string, bv, nv float64, reg bool, note string) {
			out.Changes = append(out.Changes, Change{Config: b.Name, Metric: metric, Base: bv, New: nv, Delta: delta(bv, nv), Regression: reg, Note: note})
		}
		d := delta(b.Throughput.MsgsPerSec, n.Throughput.MsgsPerSec)
		add("msgs/s", b.Throughput.MsgsPerSec, n.Throughput.MsgsPerSec, d < -th.ThroughputDrop,
			fmt.Sprintf("drop > %.0f%%", th.ThroughputDrop*100))
		add("MB/s", b.Throughput.MBPerSec, n.Throughput.MBPerSec, false, "")
		for _, l := range []struct {
			name   string
			bl, nl *Latency
		}{{"publish", b.PublishLatency, n.PublishLatency}, {"e2e", b.EndToEnd, n.EndToEnd}} {
			if l.bl == nil || l.nl == nil {
				continue
			}
			add(l.name+" p50 ms", l.bl.P50, l.nl.P50, false, "")
			d := delta(l.bl.P99, l.nl.P99)
			add(l.name+" p99 ms", l.bl.P99, l.nl.P99, d > th.P99Rise && l.nl.P99 >= th.P99FloorMs,
				fmt.Sprintf("rise > %.0f%%", th.P99Rise*100))
			add(l.name+" p99.9 ms", l.bl.P999, l.nl.P999, false, "")
			add(l.name+" max ms", l.bl.Max, l.nl.Max, false, "")
		}
		if bp, np := b.Performance, n.Performance; bp != nil && np != nil {
			d := delta(bp.Capacity, np.Capacity)
			add("capacity records/s", bp.Capacity, np.Capacity, d < -th.CapacityDrop,
				fmt.Sprintf("drop > %.0f%%", th.CapacityDrop*100))
			for _, bpt := range bp.Points {
				npt := np.point(bpt.Name)
				if npt == nil || bpt.Publish == nil || npt.Publish == nil {
					continue
				}
				add("publish p50 ms at "+bpt.Name, bpt.Publish.P50, npt.Publish.P50, false, "")
				d := delta(bpt.Publish.P99, npt.Publish.P99)
				add("publish p99 ms at "+bpt.Name, bpt.Publish.P99, npt.Publish.P99, d > th.LoadP99Rise && npt.Publish.P99 >= th.P99FloorMs,
					fmt.Sprintf("rise > %.0f%%", th.LoadP99Rise*100))
			}
		}
		for _, a := range checker.AnomalyNames {
			bv, nv := b.Anomalies[a], n.Anomalies[a]
			if bv == 0 && nv == 0 {
				continue
			}
			add("anomaly "+a, float64(bv), float64(nv), bv == 0 && nv > 0 && checker.Informational[a] == "", "new anomaly")
		}
		if b.Verdict != n.Verdict {
			reg := b.Verdict == checker.StatusPass
			out.Changes = append(out.Changes, Change{Config: b.Name, Metric: "verdict", Regression: reg,
				Note: b.Verdict + " → " + n.Verdict})
		}
	}
	for _, n := range cur.Configs {
		if base.Config(n.Name) == nil {
			out.Added = append(out.Added, n.Name)
		}
	}
	return out
}

// WriteComparison writes c as aligned columns: config, metric, base, new, change, and
// REGRESSION with its threshold where one was crossed.
func WriteComparison(w io.Writer, c *Comparison) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONFIG\tMETRIC\tBASE\tNEW\tCHANGE\t")
	for _, ch := range c.Changes {
		flag := ""
		if ch.Regression {
			flag = "REGRESSION (" + ch.Note + ")"
		}
		if ch.Metric == "verdict" {
			fmt.Fprintf(tw, "%s\t%s\t\t\t%s\t%s\n", ch.Config, ch.Metric, ch.Note, flag)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4g\t%.4g\t%s\t%s\n", ch.Config, ch.Metric, ch.Base, ch.New, pct(ch.Delta), flag)
	}
	for _, m := range c.Missing {
		fmt.Fprintf(tw, "%s\t(missing in new run)\t\t\t\tREGRESSION\n", m)
	}
	for _, a := range c.Added {
		fmt.Fprintf(tw, "%s\t(new configuration)\t\t\t\t\n", a)
	}
	return tw.Flush()
}

func pct(d float64) string {
	if math.IsInf(d, 0) {
		return "new"
	}
	return fmt.Sprintf("%+.1f%%", d*100)
}
