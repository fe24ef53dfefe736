package reports

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strings"

	"github.com/kchaos/kchaos/checker"
)

//go:embed report.html.tmpl
var reportTemplate string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"lat": func(l *Latency) string {
		if l == nil {
			return "—"
		}
		return fmt.Sprintf("%.2f / %.2f / %.2f / %.2f", l.P50, l.P99, l.P999, l.Max)
	},
	"counts": countsCell,
	// judged and informational are a configuration's anomaly counts, apart.
	"judged": func(c *ConfigSummary) string {
		judged, _ := c.splitAnomalies()
		return countsCell(judged)
	},
	"informational": func(c *ConfigSummary) string {
		_, info := c.splitAnomalies()
		if len(info) == 0 {
			return ""
		}
		return countsCell(info)
	},
	"cls": func(s string) string { return strings.ReplaceAll(s, " ", "-") },
}).Parse(reportTemplate))

func countsCell(m map[string]int64) string {
	s := countsText("", m)
	return strings.TrimSuffix(strings.TrimPrefix(s, " ["), "]")
}

// PlotsDir is the folder, in the run directory and in each configuration's folder, that
// holds the charts.
const PlotsDir = "plots"

// Options configure Generate.
type Options struct {
	// Version is the kchaos version recorded in summary.json; default "dev".
	Version string
}

// Generate loads the run directory dir and writes summary.json, bench.txt (benchstat
// lines), the charts (dir/plots and dir/CONFIG/plots, PNG and SVG) and report.html into it.
func Generate(dir string, opts Options) (*Run, error) {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	run, err := Load(dir, opts.Version)
	if err != nil {
		return nil, err
	}
	if err := WriteSummaryJSON(filepath.Join(dir, SummaryFile), &run.Summary); err != nil {
		return nil, err
	}
	var bench bytes.Buffer
	if err := WriteBench(&bench, &run.Summary); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, BenchFile), bench.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	byConfig, err := PlotByConfig(run, filepath.Join(dir, PlotsDir), PlotsDir)
	if err != nil {
		return nil, err
	}
	perfCharts, err := PlotPerformance(run, filepath.Join(dir, PlotsDir), PlotsDir)
	if err != nil {
		return nil, err
	}
	view := htmlView{S: &run.Summary}
	for _, c := range perfCharts {
		img, err := dataURI(dir, c)
		if err != nil {
			return nil, err
		}
		view.Performance = append(view.Performance, img)
	}
	for _, c := range byConfig {
		img, err := dataURI(dir, c)
		if err != nil {
			return nil, err
		}
		view.ByConfig = append(view.ByConfig, img)
	}
	for _, cd := range run.Configs {
		rel := filepath.Join(cd.Summary.Dir, PlotsDir)
		cv := configView{S: cd.Summary, Anomalies: anomalyRows(cd.Summary)}
		charts := []Chart{}
		tl, err := PlotTimeline(cd, filepath.Join(dir, rel), rel)
		if err != nil {
			return nil, err
		}
		charts = append(charts, tl)
		if uc, ok, err := PlotUnseen(cd, filepath.Join(dir, rel), rel); err != nil {
			return nil, err
		} else if ok {
			charts = append(charts, uc)
		}
		if rc, ok, err := PlotResources(cd, filepath.Join(dir, rel), rel); err != nil {
			return nil, err
		} else if ok {
			charts = append(charts, rc)
		}
		for _, c := range charts {
			img, err := dataURI(dir, c)
			if err != nil {
				return nil, err
			}
			cv.Charts = append(cv.Charts, img)
		}
		view.AnyFaults = view.AnyFaults || len(cd.Summary.Faults) > 0
		view.Configs = append(view.Configs, cv)
	}
	var table bytes.Buffer
	if err := WritePerfTable(&table, &run.Summary); err != nil {
		return nil, err
	}
	view.PerfTable = table.String()
	var page bytes.Buffer
	if err := reportTmpl.Execute(&page, view); err != nil {
		return nil, fmt.Errorf("reports: html: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ReportFile), page.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	return run, nil
}

type htmlView struct {
	S         *Summary
	PerfTable string
	// Performance holds the no-fault comparisons (PlotPerformance); ByConfig the run proper's.
	Performance []image
	ByConfig    []image
	Configs     []configView
	AnyFaults   bool
}

type configView struct {
	S         *ConfigSummary
	Charts    []image
	Anomalies []anomalyRow
}

// anomalyRow is one anomaly a configuration's page lists: found at least once.
type anomalyRow struct {
	Name  string
	Count int64
	// Informational is why the anomaly judges nothing, when it does not.
	Informational string
}

// anomalyRows lists c's non-zero anomalies in the checker's order.
func anomalyRows(c *ConfigSummary) []anomalyRow {
	var rows []anomalyRow
	for _, n := range checker.AnomalyNames {
		if c.Anomalies[n] != 0 {
			rows = append(rows, anomalyRow{Name: n, Count: c.Anomalies[n], Informational: c.Informational[n]})
		}
	}
	return rows
}

// image is a chart embedded in the page.
type image struct {
	Title string
	PNG   template.URL
}

// dataURI reads a chart's PNG and returns it as a data: URI, so the page needs no files.
func dataURI(dir string, c Chart) (image, error) {
	b, err := os.ReadFile(filepath.Join(dir, c.Path+".png"))
	if err != nil {
		return image{}, fmt.Errorf("reports: %w", err)
	}
	return image{Title: c.Title, PNG: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))}, nil
}
