package reports

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/kchaos/kchaos/rundir"
)

// Performance is a configuration's cost measured with no fault in force (performance.json):
// its capacity and its latency-throughput curve.
type Performance struct {
	// Capacity is the highest rate sustained with a bounded queue, records/s and MB/s.
	Capacity     float64 `json:"capacity"`
	CapacityMBps float64 `json:"capacity_mbps"`
	// CapacityLatency is the publish latency at capacity.
	CapacityLatency *Latency `json:"capacity_latency,omitempty"`
	// CapacityErrors counts errors by Kafka error name during the capacity search (schema
	// v4): a search with errors measured a failover, not the configuration.
	CapacityErrors map[string]int64 `json:"capacity_errors,omitempty"`
	// Points are the offered loads in increasing order.
	Points []LoadPoint `json:"points"`
}

// LoadPoint is one point of a latency-throughput curve.
type LoadPoint struct {
	// Name is "0.5x" (of the capacity) or "5000/s"; Offered and Achieved are records/s.
	Name     string   `json:"name"`
	Offered  float64  `json:"offered"`
	Achieved float64  `json:"achieved"`
	Publish  *Latency `json:"publish,omitempty"`
	EndToEnd *Latency `json:"end_to_end,omitempty"`
	// Errors counts errors by Kafka error name during the step (schema v4).
	Errors map[string]int64 `json:"errors,omitempty"`
}

// performanceOf converts the run directory's figures (microseconds) to the summary's (ms).
func performanceOf(p *rundir.Performance) *Performance {
	out := &Performance{Capacity: p.Capacity, CapacityMBps: p.CapacityMBps, CapacityLatency: latencyFrom(p.CapacityLatency),
		CapacityErrors: p.CapacityErrors}
	for _, pt := range p.Points {
		out.Points = append(out.Points, LoadPoint{Name: pt.Name, Offered: pt.Offered, Achieved: pt.Achieved,
			Publish: latencyFrom(pt.Publish), EndToEnd: latencyFrom(pt.EndToEnd), Errors: pt.Errors})
	}
	return out
}

// latencyFrom converts percentiles in microseconds; nil when nothing was recorded.
func latencyFrom(p rundir.Percentiles) *Latency {
	if p.Count == 0 {
		return nil
	}
	return &Latency{Count: p.Count, Mean: p.Mean / 1e3, P50: float64(p.P50) / 1e3, P99: float64(p.P99) / 1e3,
		P999: float64(p.P999) / 1e3, Max: float64(p.Max) / 1e3}
}

// commonLoads returns the absolute offered loads ("N/s" points) every measured config ran, in
// increasing order: where configs can be compared at the same load.
func commonLoads(cs []ConfigSummary) []string {
	count := map[string]int{}
	offered := map[string]float64{}
	n := 0
	for _, c := range cs {
		if c.Performance == nil {
			continue
		}
		n++
		for _, p := range c.Performance.Points {
			if len(p.Name) > 2 && p.Name[len(p.Name)-2:] == "/s" {
				count[p.Name]++
				offered[p.Name] = p.Offered
			}
		}
	}
	var out []string
	for name, k := range count {
		if k == n {
			out = append(out, name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return offered[out[i]] < offered[out[j]] })
	return out
}

// point returns c's point named name, or nil.
func (p *Performance) point(name string) *LoadPoint {
	for i := range p.Points {
		if p.Points[i].Name == name {
			return &p.Points[i]
		}
	}
	return nil
}

// PlotPerformance draws the no-fault comparisons into dir when some config measured its
// performance: capacity by config (records/s and MB/s), each config's latency-throughput
// curve (p50 and p99 against offered load, log latency axis, separate panels so p50 stays
// readable next to p99), and the latency percentiles at each load every config ran.
func PlotPerformance(run *Run, dir, rel string) ([]Chart, error) {
	var names []string
	var caps, mbps []float64
	for _, c := range run.Summary.Configs {
		if c.Performance == nil {
			continue
		}
		names = append(names, c.Name)
		caps = append(caps, c.Performance.Capacity)
		mbps = append(mbps, c.Performance.CapacityMBps)
	}
	if len(names) == 0 {
		return nil, nil
	}
	w := vg.Points(max(480, 90*float64(len(names))))
	var charts []Chart
	c1 := newPlot("Capacity by config (no fault; highest rate with a bounded queue)", "records/s")
	c2 := newPlot("", "MB/s")
	if err := groupedBars(c1, names, nil, [][]float64{caps}); err != nil {
		return nil, err
	}
	if err := groupedBars(c2, names, nil, [][]float64{mbps}); err != nil {
		return nil, err
	}
	if err := saveGrid([]*plot.Plot{c1, c2}, w, 220, dir, "capacity"); err != nil {
		return nil, err
	}
	charts = append(charts, Chart{"Capacity by config (no fault in force)", filepath.Join(rel, "capacity")})

	var panels []*plot.Plot
	for _, q := range []struct {
		title string
		pick  func(*Latency) float64
	}{
		{"Publish latency p50 against offered load", func(l *Latency) float64 { return l.P50 }},
		{"Publish latency p99 against offered load", func(l *Latency) float64 { return l.P99 }},
		{"Publish latency p99.9 against offered load", func(l *Latency) float64 { return l.P999 }},
	} {
		p := newPlot(q.title, "ms (log)")
		p.X.Label.Text = "offered load (records/s)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		i := 0
		for _, c := range run.Summary.Configs {
			if c.Performance == nil {
				continue
			}
			var xys plotter.XYs
			for _, pt := range c.Performance.Points {
				if pt.Publish == nil {
					continue
				}
				xys = append(xys, plotter.XY{X: pt.Offered, Y: max(q.pick(pt.Publish), 0.001)})
			}
			if len(xys) == 0 {
				i++
				continue
			}
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, fmt.Errorf("reports: %w", err)
			}
			col := plotutil.Color(i)
			line.Color, points.Color = col, col
			line.Width = vg.Points(1.5)
			p.Add(line, points)
			p.Legend.Add(c.Name, line)
			i++
		}
		// Latency rises with load: the top left corner is the one the curves leave empty.
		p.Legend.Top, p.Legend.Left = true, true
		panels = append(panels, p)
	}
	if err := saveGrid(panels, 640, 260, dir, "latency-load"); err != nil {
		return nil, err
	}
	charts = append(charts, Chart{"Latency against offered load (no fault in force)", filepath.Join(rel, "latency-load")})

	for _, load := range commonLoads(run.Summary.Configs) {
		var pub [4][]float64
		var ns []string
		for _, c := range run.Summary.Configs {
			if c.Performance == nil {
				continue
			}
			pt := c.Performance.point(load)
			v := [4]float64{}
			if pt != nil && pt.Publish != nil {
				v = [4]float64{pt.Publish.P50, pt.Publish.P99, pt.Publish.P999, pt.Publish.Max}
			}
			ns = append(ns, c.Name)
			for k := range pub {
				pub[k] = append(pub[k], v[k])
			}
		}
		p := newPlot("Publish latency at "+load+" offered, by config (no fault)", "ms")
		if err := groupedBars(p, ns, []string{"p50", "p99", "p99.9", "max"}, pub[:]); err != nil {
			return nil, err
		}
		name := "latency-at-" + unsafeFileChars.ReplaceAllString(load, "_")
		if err := saveGrid([]*plot.Plot{p}, w, 240, dir, name); err != nil {
			return nil, err
		}
		charts = append(charts, Chart{"Publish latency at " + load + " (no fault in force)", filepath.Join(rel, name)})
	}
	return charts, nil
}

// unsafeFileChars are replaced in chart file names.
var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
