package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// SideCell is one side of a claim in a table cell: "acks=1: 37 in 2 of 3 trials".
func SideCell(s *SideResult) string {
	if s == nil {
		return "—"
	}
	return fmt.Sprintf("%s: %d in %d of %d trials", s.Match, s.Count, s.Observed, s.Trials)
}

// declared reports whether the run's workload declared claim c.
func declared(c ClaimResult) bool { return c.Pos != "" }

// WriteClaimsTable prints the claims the run's workload declares in aligned columns:
// claim, status, each side's evidence and the trials; nothing when it declares none.
func WriteClaimsTable(w io.Writer, s *Summary) error {
	var rows []ClaimResult
	for _, c := range s.Claims {
		if declared(c) {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCLAIM\tSTATUS\tUNSAFE SIDE [anomaly, trials showing it]\tSAFE SIDE\tTRIALS")
	for _, c := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", c.ID, c.Status, SideCell(c.Unsafe), SideCell(c.Safe), c.Trials)
		for _, p := range c.Pairs {
			fmt.Fprintf(tw, "\t  %s: %s\t%s\t\t\n", p.Setting, p.Status, p.Measured)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range rows {
		if c.Status != ClaimHeld {
			why := c.Tried
			if why == "" {
				why = c.Measured
			}
			fmt.Fprintf(w, "claim %d %s: %s\n", c.ID, c.Status, why)
		}
	}
	return nil
}

// ClaimRun is one workload file's run in a `kchaos claims` index.
type ClaimRun struct {
	// File is the workload file; Dir its run directory, relative to the index.
	File string
	Dir  string
	// Summary is the run's summary; nil when the run did not get as far as a report.
	Summary *Summary
	// Wall is the run's wall time; Err what stopped it, if anything.
	Wall time.Duration
	Err  error
}

// ClaimRow is one row of a claims index: a declared claim of one workload file.
type ClaimRow struct {
	File   string
	Dir    string
	Claim  ClaimResult
	Wall   time.Duration
	Failed []string
}

// ClaimRows lists the declared claims of every run, in run order.
func ClaimRows(runs []ClaimRun) []ClaimRow {
	var out []ClaimRow
	for _, r := range runs {
		if r.Summary == nil {
			out = append(out, ClaimRow{File: r.File, Dir: r.Dir, Wall: r.Wall, Claim: ClaimResult{Status: "error", Measured: errText(r.Err)}})
			continue
		}
		fails := Failures(r.Summary)
		for _, c := range r.Summary.Claims {
			if declared(c) {
				out = append(out, ClaimRow{File: r.File, Dir: r.Dir, Claim: c, Wall: r.Wall, Failed: fails})
			}
		}
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return "no report"
	}
	return err.Error()
}

// WriteClaimsIndexTable prints the rows in aligned columns: claim, status, each side's
// evidence, trials, wall time and file.
func WriteClaimsIndexTable(w io.Writer, rows []ClaimRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLAIM\tSTATUS\tUNSAFE SIDE [anomaly, trials showing it]\tSAFE SIDE\tTRIALS\tWALL\tFILE")
	for _, r := range rows {
		id := "-"
		if r.Claim.ID > 0 {
			id = fmt.Sprint(r.Claim.ID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id, r.Claim.Status, SideCell(r.Claim.Unsafe), SideCell(r.Claim.Safe), r.Claim.Trials,
			r.Wall.Round(time.Second), filepath.Base(r.File))
		for _, p := range r.Claim.Pairs {
			fmt.Fprintf(tw, "\t  %s: %s\t%s\t\t\t\t\n", p.Setting, p.Status, p.Measured)
		}
	}
	return tw.Flush()
}

var indexTmpl = template.Must(template.New("index").Funcs(template.FuncMap{
	"cls":  func(s string) string { return strings.ReplaceAll(s, " ", "-") },
	"side": SideCell,
	"wall": func(d time.Duration) string { return d.Round(time.Second).String() },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>kchaos claims</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1300px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.held { background: #e3f6e3; }
.refuted, .error { background: #fbdada; }
.unknown { background: #fff3cd; }
</style>
</head>
<body>
<h1>kchaos claims</h1>
<p>{{.When}} · {{len .Rows}} claims from {{.Files}} workload files · total wall time {{wall .Total}}. Each claim links to
its run's report. A claim held when its unsafe side showed the predicted anomaly and its safe side never did.</p>
<table>
<tr><th>claim</th><th>status</th><th>unsafe side</th><th>safe side</th><th>trials</th><th>wall time</th><th>evidence</th><th>workload</th></tr>
{{range .Rows}}<tr><td>{{if .Claim.ID}}<a href="{{.Dir}}/report.html#claim-{{.Claim.ID}}">{{.Claim.ID}}</a>{{end}}</td>
<td class="{{cls .Claim.Status}}">{{.Claim.Status}}</td><td>{{side .Claim.Unsafe}}</td><td>{{side .Claim.Safe}}</td>
<td>{{.Claim.Trials}}</td><td>{{wall .Wall}}</td><td>{{.Claim.Measured}}{{with .Claim.Tried}}<br><em>{{.}}</em>{{end}}</td>
<td><a href="{{.Dir}}/report.html">{{.File}}</a></td></tr>
{{end}}</table>
</body>
</html>
`))

// WriteClaimsIndex writes the index page of a `kchaos claims` run to path: one row per
// declared claim, linking to the run's report.
func WriteClaimsIndex(path string, rows []ClaimRow, files int, total time.Duration) error {
	var b bytes.Buffer
	err := indexTmpl.Execute(&b, struct {
		Rows  []ClaimRow
		Files int
		Total time.Duration
		When  string
	}{rows, files, total, time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return fmt.Errorf("reports: claims index: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	return nil
}
