package reports

import (
	"image/color"
	"math"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// drainMarks draws the final drain's start and end as vertical lines.
type drainMarks struct{ start, end float64 }

var drainColor = color.RGBA{R: 0xf3, G: 0x97, B: 0x4a, A: 0xff}

// Plot implements plot.Plotter.
func (d drainMarks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range []float64{d.start, d.end} {
		if x < 0 {
			continue
		}
		sty := draw.LineStyle{Color: drainColor, Width: vg.Points(1.2)}
		c.StrokeLine2(sty, trX(x), c.Min.Y, trX(x), c.Max.Y)
	}
}

// PlotUnseen draws the checker's series into dir/unseen: acknowledged records no read has
// returned yet, by partition and by key bucket, and each consumer's realtime lag, over the
// run with fault windows shaded and the final drain's start and end as orange lines. Records
// merely behind a consumer fall back to zero; lost ones stay up through the drain. ok is
// false when the verdict has no series.
func PlotUnseen(cd *ConfigData, dir, rel string) (c Chart, ok bool, err error) {
	s := cd.Series
	if s == nil || len(s.Times) == 0 {
		return Chart{}, false, nil
	}
	t := make([]float64, len(s.Times))
	end := 1.0
	for i, ns := range s.Times {
		t[i] = float64(ns) / 1e9
		end = max(end, t[i])
	}
	for _, f := range cd.Summary.Faults {
		end = max(end, f.End)
	}
	marks := drainMarks{-1, -1}
	if s.DrainStart >= 0 {
		marks = drainMarks{float64(s.DrainStart) / 1e9, float64(s.DrainEnd) / 1e9}
	}
	panel := func(title, y string, m map[string][]int64, scale float64) (*plot.Plot, error) {
		p := timePlot(title, y, cd, end)
		p.Add(marks)
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		var ls []line
		for _, n := range names {
			ys := make([]float64, len(m[n]))
			for i, v := range m[n] {
				ys[i] = float64(v) * scale
				if v < 0 { // a step without a value
					ys[i] = -1
				}
			}
			ls = append(ls, line{n, t, dropNegative(ys)})
		}
		if _, err := addLines(p, ls); err != nil {
			return nil, err
		}
		p.Y.Min = 0
		return p, nil
	}
	byPart, err := panel("Unseen acknowledged records by partition (orange: final drain) — "+cd.Summary.Name, "records", s.UnseenByPartition, 1)
	if err != nil {
		return Chart{}, false, err
	}
	byKey, err := panel("Unseen acknowledged records by key bucket", "records", s.UnseenByKeyBucket, 1)
	if err != nil {
		return Chart{}, false, err
	}
	lag, err := panel("Realtime lag per consumer (worst per step)", "seconds", s.Lag, 1e-9)
	if err != nil {
		return Chart{}, false, err
	}
	if err := saveGrid([]*plot.Plot{byPart, byKey, lag}, 720, 200, dir, "unseen"); err != nil {
		return Chart{}, false, err
	}
	return Chart{"Unseen records and realtime lag — " + cd.Summary.Name, filepath.Join(rel, "unseen")}, true, nil
}

// dropNegative turns the -1 of steps without a value into NaN, which addLines leaves out.
func dropNegative(ys []float64) []float64 {
	for i, y := range ys {
		if y < 0 {
			ys[i] = math.NaN()
		}
	}
	return ys
}
