package reports

import (
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/kchaos/kchaos/rundir"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// line is one named series of (t, y); NaN values are left out.
type line struct {
	name string
	xs   []float64
	ys   []float64
}

// addLines adds the lines to p with a legend and returns whether any had a point.
func addLines(p *plot.Plot, lines []line) (bool, error) {
	any := false
	for i, ln := range lines {
		var pts plotter.XYs
		for j := range ln.xs {
			if j < len(ln.ys) && !math.IsNaN(ln.ys[j]) && !math.IsInf(ln.ys[j], 0) {
				pts = append(pts, plotter.XY{X: ln.xs[j], Y: ln.ys[j]})
			}
		}
		if len(pts) == 0 {
			continue
		}
		any = true
		l, err := plotter.NewLine(pts)
		if err != nil {
			return false, fmt.Errorf("reports: %w", err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		if len(lines) > 1 {
			p.Legend.Add(ln.name, l)
		}
	}
	p.Legend.Top = true
	return any, nil
}

// timePlot is a panel over the run's time with fault windows and leader changes drawn.
func timePlot(title, y string, cd *ConfigData, end float64) *plot.Plot {
	p := newPlot(title, y)
	p.X.Label.Text = "seconds since start"
	p.X.Min, p.X.Max = 0, end
	p.Add(faultBands{faults: cd.Summary.Faults, leaders: cd.Timeline.LeaderChanges})
	return p
}

// PlotTimeline draws one configuration's run over time into dir/timeline: throughput, p99
// publish and end-to-end latency per second, consumer lag, and the smallest sampled ISR,
// each with fault windows shaded and labelled and leader changes as dashed lines.
func PlotTimeline(cd *ConfigData, dir, rel string) (Chart, error) {
	pts := cd.Timeline.Points
	end := 1.0
	for _, f := range cd.Summary.Faults {
		end = max(end, f.End)
	}
	n := len(pts)
	t := make([]float64, n)
	sent, acked, errs := make([]float64, n), make([]float64, n), make([]float64, n)
	pub, e2e, lag, isr := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	hasISR := false
	for i, pt := range pts {
		t[i] = pt.T
		end = max(end, pt.T)
		sent[i], acked[i], errs[i] = float64(pt.Sent), float64(pt.Acked), float64(pt.Errors)
		pub[i], e2e[i] = pt.PublishP99, pt.EndToEndP99
		lag[i], isr[i] = math.NaN(), math.NaN()
		if pt.Lag >= 0 {
			lag[i] = float64(pt.Lag)
		}
		if pt.MinISR > 0 {
			isr[i], hasISR = float64(pt.MinISR), true
		}
	}
	tput := timePlot("Throughput per second — "+cd.Summary.Name, "records/s", cd, end)
	if _, err := addLines(tput, []line{{"sent", t, sent}, {"acknowledged", t, acked}, {"failed or indeterminate", t, errs}}); err != nil {
		return Chart{}, err
	}
	lat := timePlot("p99 latency per second", "ms", cd, end)
	if _, err := addLines(lat, []line{{"publish p99", t, pub}, {"end-to-end p99", t, e2e}}); err != nil {
		return Chart{}, err
	}
	lagP := timePlot("Consumer lag", "records", cd, end)
	if _, err := addLines(lagP, []line{{"lag", t, lag}}); err != nil {
		return Chart{}, err
	}
	panels := []*plot.Plot{tput, lat, lagP}
	if hasISR {
		isrP := timePlot("Smallest ISR sampled (dashed: leader changes)", "replicas", cd, end)
		if _, err := addLines(isrP, []line{{"min ISR", t, isr}}); err != nil {
			return Chart{}, err
		}
		isrP.Y.Min = 0
		panels = append(panels, isrP)
	}
	for _, p := range panels {
		if p.Y.Min > 0 {
			p.Y.Min = 0
		}
	}
	if err := saveGrid(panels, 720, 200, dir, "timeline"); err != nil {
		return Chart{}, err
	}
	return Chart{"Over time — " + cd.Summary.Name, filepath.Join(rel, "timeline")}, nil
}

// PlotResources draws the sampler's series into dir/resources: CPU, RSS and disk writes per
// broker process, and each scraped metric that had a value. ok is false when there is
// nothing to draw.
func PlotResources(cd *ConfigData, dir, rel string) (c Chart, ok bool, err error) {
	r := cd.Resources
	if r == nil || len(r.Processes) == 0 {
		return Chart{}, false, nil
	}
	names := r.Names()
	end := 1.0
	for _, ps := range r.Processes {
		if len(ps.T) > 0 {
			end = max(end, ps.T[len(ps.T)-1])
		}
	}
	build := func(f func(*rundir.ProcessSeries) []float64) []line {
		var ls []line
		for _, n := range names {
			ps := r.Processes[n]
			ls = append(ls, line{n, ps.T, f(ps)})
		}
		return ls
	}
	// The sampler's clock starts before the history's: the windows of the faults that squeeze
	// a broker's resources move by the difference of the two wall-clock starts, so each sits
	// over the samples it squeezed (the other faults are on the timeline).
	bands := faultBands{faults: shiftedFaults(cd, r.Start)}
	panel := func(title, y string) *plot.Plot {
		p := newPlot(title, y)
		p.X.Label.Text = "seconds since sampler start"
		p.X.Min, p.X.Max, p.Y.Min = 0, end, 0
		if len(bands.faults) > 0 {
			p.Add(bands)
		}
		return p
	}
	cpu := panel("Broker CPU — "+cd.Summary.Name, "% of one core")
	rss := panel("Broker RSS", "MB")
	wr := panel("Broker disk writes", "MB/s")
	if _, err := addLines(cpu, build(func(ps *rundir.ProcessSeries) []float64 { return ps.CPU })); err != nil {
		return Chart{}, false, err
	}
	if _, err := addLines(rss, build(func(ps *rundir.ProcessSeries) []float64 { return scaled(ps.RSS, 1e-6) })); err != nil {
		return Chart{}, false, err
	}
	if _, err := addLines(wr, build(func(ps *rundir.ProcessSeries) []float64 { return scaled(ps.WriteBytes, 1e-6) })); err != nil {
		return Chart{}, false, err
	}
	panels := []*plot.Plot{cpu, rss, wr}
	var metrics []string
	for _, n := range names {
		for m := range r.Processes[n].Metrics {
			metrics = append(metrics, m)
		}
	}
	for _, m := range sortedUnique(metrics) {
		p := panel(m, "value")
		drawn, err := addLines(p, build(func(ps *rundir.ProcessSeries) []float64 {
			out := make([]float64, len(ps.T))
			for i := range out {
				out[i] = math.NaN()
				if vs := ps.Metrics[m]; i < len(vs) && vs[i] != nil {
					out[i] = *vs[i]
				}
			}
			return out
		}))
		if err != nil {
			return Chart{}, false, err
		}
		if drawn {
			panels = append(panels, p)
		}
	}
	if err := saveGrid(panels, 720, 180, dir, "resources"); err != nil {
		return Chart{}, false, err
	}
	return Chart{"Broker resources — " + cd.Summary.Name, filepath.Join(rel, "resources")}, true, nil
}

// shiftedFaults returns the windows of cd's resource faults (cpu-stress, memory-pressure) in
// seconds since samplerStart (RFC 3339), or none when either start is unknown.
func shiftedFaults(cd *ConfigData, samplerStart string) []Fault {
	if cd.Header == nil || cd.Summary == nil {
		return nil
	}
	hs, err1 := time.Parse(time.RFC3339Nano, cd.Header.Start)
	ss, err2 := time.Parse(time.RFC3339Nano, samplerStart)
	if err1 != nil || err2 != nil {
		return nil
	}
	off := hs.Sub(ss).Seconds()
	var out []Fault
	for _, f := range cd.Summary.Faults {
		if f.Kind == "cpu-stress" || f.Kind == "memory-pressure" {
			f.Start, f.End = f.Start+off, f.End+off
			out = append(out, f)
		}
	}
	return out
}

func scaled(vs []int64, f float64) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = float64(v) * f
	}
	return out
}

func sortedUnique(ss []string) []string {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	return sortedKeys(m)
}
