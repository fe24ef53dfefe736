package reports

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	_ "gonum.org/v1/plot/vg/vgimg" // registers png
	_ "gonum.org/v1/plot/vg/vgsvg" // registers svg

	"github.com/kchaos/kchaos/checker"
)

// PlotFormats are the formats every chart is written in.
var PlotFormats = []string{"png", "svg"}

// Chart is one rendered chart: its title and its files relative to the run directory,
// without extension (add ".png" or ".svg").
type Chart struct {
	Title string
	Path  string
}

// saveGrid renders a column of plots, aligned, into dir/name.{png,svg}, each panel h tall.
func saveGrid(plots []*plot.Plot, w, h vg.Length, dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		grid[i] = []*plot.Plot{p}
	}
	for _, format := range PlotFormats {
		c, err := draw.NewFormattedCanvas(w, h*vg.Length(len(plots)), format)
		if err != nil {
			return fmt.Errorf("reports: %w", err)
		}
		dc := draw.New(c)
		tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: 4, PadBottom: 4, PadLeft: 4, PadRight: 8, PadY: 6}
		cs := plot.Align(grid, tiles, dc)
		for i, p := range plots {
			p.Draw(cs[i][0])
		}
		f, err := os.Create(filepath.Join(dir, name+"."+format))
		if err != nil {
			return fmt.Errorf("reports: %w", err)
		}
		_, werr := c.WriteTo(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("reports: plot %s: %w", name, werr)
		}
	}
	return nil
}

// groupedBars adds one bar series per entry of series (values by config) to p, side by side.
func groupedBars(p *plot.Plot, configs []string, labels []string, series [][]float64) error {
	n := len(series)
	w := vg.Points(min(18, 60/float64(max(1, n))))
	for i, vals := range series {
		b, err := plotter.NewBarChart(plotter.Values(vals), w)
		if err != nil {
			return fmt.Errorf("reports: %w", err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(n-1)/2)
		p.Add(b)
		if n > 1 {
			p.Legend.Add(labels[i], b)
		}
	}
	p.NominalX(configs...)
	p.X.Tick.Label.Rotation = math.Pi / 8
	p.X.Tick.Label.XAlign = draw.XRight
	p.Legend.Top = true
	p.Y.Min = 0
	return nil
}

func newPlot(title, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

// PlotByConfig draws the by-configuration comparisons into dir: throughput (msgs/s and MB/s),
// publish and end-to-end latency percentiles, and lost/duplicate counts.
func PlotByConfig(run *Run, dir, rel string) ([]Chart, error) {
	var names []string
	var msgs, mbs, lost, dup, unseen []float64
	pub := make([][]float64, 4)
	e2e := make([][]float64, 4)
	for _, c := range run.Summary.Configs {
		names = append(names, c.Name)
		msgs = append(msgs, c.Throughput.MsgsPerSec)
		mbs = append(mbs, c.Throughput.MBPerSec)
		lost = append(lost, float64(c.Anomalies[checker.Lost]))
		dup = append(dup, float64(c.Anomalies[checker.Duplicate]))
		unseen = append(unseen, float64(c.Anomalies[checker.Unseen]))
		for i, l := range []*Latency{c.PublishLatency, c.EndToEnd} {
			dst := [][][]float64{pub, e2e}[i]
			v := [4]float64{}
			if l != nil {
				v = [4]float64{l.P50, l.P99, l.P999, l.Max}
			}
			for k := range dst {
				dst[k] = append(dst[k], v[k])
			}
		}
	}
	w := vg.Points(max(480, 90*float64(len(names))))
	var charts []Chart

	tput1 := newPlot("Throughput by config (acknowledged; sent for acks=0)", "msgs/s")
	tput2 := newPlot("", "MB/s")
	if err := groupedBars(tput1, names, nil, [][]float64{msgs}); err != nil {
		return nil, err
	}
	if err := groupedBars(tput2, names, nil, [][]float64{mbs}); err != nil {
		return nil, err
	}
	if err := saveGrid([]*plot.Plot{tput1, tput2}, w, 220, dir, "throughput"); err != nil {
		return nil, err
	}
	charts = append(charts, Chart{"Throughput by config", filepath.Join(rel, "throughput")})

	pctl := []string{"p50", "p99", "p99.9", "max"}
	lat1 := newPlot("Publish latency by config", "ms")
	lat2 := newPlot("End-to-end latency by config", "ms")
	if err := groupedBars(lat1, names, pctl, pub); err != nil {
		return nil, err
	}
	if err := groupedBars(lat2, names, pctl, e2e); err != nil {
		return nil, err
	}
	if err := saveGrid([]*plot.Plot{lat1, lat2}, w, 240, dir, "latency"); err != nil {
		return nil, err
	}
	charts = append(charts, Chart{"Latency percentiles by config", filepath.Join(rel, "latency")})

	loss := newPlot("Lost, duplicated and unseen acknowledged records by config", "records")
	if err := groupedBars(loss, names, []string{"lost", "duplicate", "unseen"}, [][]float64{lost, dup, unseen}); err != nil {
		return nil, err
	}
	if err := saveGrid([]*plot.Plot{loss}, w, 260, dir, "loss"); err != nil {
		return nil, err
	}
	charts = append(charts, Chart{"Lost and duplicate counts by config", filepath.Join(rel, "loss")})

	nines1, err := ninesPlot("Publish latency distribution", run, func(cd *ConfigData) *hdrhistogram.Histogram { return cd.Publish })
	if err != nil {
		return nil, err
	}
	nines2, err := ninesPlot("End-to-end latency distribution", run, func(cd *ConfigData) *hdrhistogram.Histogram { return cd.EndToEnd })
	if err != nil {
		return nil, err
	}
	if err := saveGrid([]*plot.Plot{nines1, nines2}, 640, 300, dir, "latency-distribution"); err != nil {
		return nil, err
	}
	charts = append(charts, Chart{"Latency distribution (log nines axis)", filepath.Join(rel, "latency-distribution")})
	return charts, nil
}

// ninesPlot draws latency against percentile on a "nines" axis: x = log10(1/(1−q)), so 90%,
// 99%, 99.9% are evenly spaced, as HdrHistogram's plots do. One line per configuration.
func ninesPlot(title string, run *Run, hist func(*ConfigData) *hdrhistogram.Histogram) (*plot.Plot, error) {
	p := newPlot(title, "latency (ms, log)")
	p.X.Label.Text = "percentile"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	maxX := 1.0
	for i, cd := range run.Configs {
		h := hist(cd)
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		top := math.Log10(float64(h.TotalCount()))
		maxX = max(maxX, top)
		var pts plotter.XYs
		for x := 0.0; x <= top+1e-9; x += 0.05 {
			q := 100 * (1 - math.Pow(10, -x))
			pts = append(pts, plotter.XY{X: x, Y: max(0.001, float64(h.ValueAtQuantile(q))/1e3)})
		}
		pts = append(pts, plotter.XY{X: top, Y: max(0.001, float64(h.Max())/1e3)})
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("reports: %w", err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(i / 7)
		p.Add(l)
		p.Legend.Add(cd.Summary.Name, l)
	}
	p.X.Min, p.X.Max = 0, math.Ceil(maxX)
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		var ts []plot.Tick
		for x := math.Ceil(lo); x <= hi; x++ {
			ts = append(ts, plot.Tick{Value: x, Label: ninesLabel(int(x))})
		}
		return ts
	})
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// ninesLabel labels the percentile 1 − 10^−n: 0%, 90%, 99%, 99.9%, ...
func ninesLabel(n int) string {
	if n == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*(1-math.Pow(10, -float64(n))), 'f', max(0, n-2), 64) + "%"
}

// faultBands shades fault windows across the plot's height and labels them at the top.
type faultBands struct {
	faults  []Fault
	leaders []Marker
}

var (
	faultFill   = color.NRGBA{R: 230, G: 60, B: 60, A: 45}
	leaderColor = color.NRGBA{R: 90, G: 60, B: 160, A: 200}
)

// Plot implements plot.Plotter.
func (fb faultBands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	clamp := func(x vg.Length) vg.Length { return min(max(x, c.Min.X), c.Max.X) }
	sty := draw.TextStyle{Color: color.NRGBA{R: 160, A: 255}, Font: p.Title.TextStyle.Font, Handler: p.Title.TextStyle.Handler}
	sty.Font.Size = vg.Points(8)
	for _, f := range fb.faults {
		x0, x1 := clamp(trX(f.Start)), clamp(trX(f.End))
		if x1 <= x0 {
			x1 = x0 + 1
		}
		c.FillPolygon(faultFill, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		c.FillText(sty, vg.Point{X: x0 + 2, Y: c.Max.Y - sty.Font.Size}, fmt.Sprintf("%s %s", f.Kind, f.Target))
	}
	ls := draw.LineStyle{Color: leaderColor, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(3), vg.Points(2)}}
	for _, m := range fb.leaders {
		x := trX(m.T)
		if x < c.Min.X || x > c.Max.X {
			continue
		}
		c.StrokeLine2(ls, x, c.Min.Y, x, c.Max.Y)
	}
}
