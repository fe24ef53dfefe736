package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/reports"
)

func init() { commands = append(commands, newReportCmd, newCompareCmd) }

func newReportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report RUNDIR",
		Short: "Regenerate report.html, summary.json, bench.txt and the plots of a run directory",
		Long: `report reads a run directory written by kchaos run (each configuration folder's
history.jsonl, result.json, verdict.json, series.json, resources.json and HdrHistogram logs)
and writes RUNDIR/summary.json, RUNDIR/bench.txt (benchstat lines), the charts under
RUNDIR/plots and RUNDIR/CONFIG/plots (PNG and SVG), and RUNDIR/report.html, one
self-contained page. It re-runs nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := writeReport(cmd.OutOrStdout(), args[0])
			return err
		},
	}
}

// writeReport generates the report of a run directory and prints its table and path.
func writeReport(w io.Writer, dir string) (*reports.Run, error) {
	start := time.Now()
	run, err := reports.Generate(dir, reports.Options{Version: version})
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	fmt.Fprintln(w)
	if err := reports.WritePerfTable(w, &run.Summary); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "\nreport: %s (%s)\n", filepath.Join(dir, reports.ReportFile), time.Since(start).Round(time.Millisecond))
	return run, nil
}

func newCompareCmd() *cobra.Command {
	th := reports.DefaultThresholds
	cmd := &cobra.Command{
		Use:   "compare BASE NEW",
		Short: "Compare two runs' summaries; exit 1 on a regression",
		Long: `compare reads BASE and NEW (run directories or summary.json files) and prints, for
every configuration in both and every metric, the base and new value and the change.
A throughput drop past --max-throughput-drop, a p99 latency rise past --max-p99-rise
(ignored below --p99-floor-ms), a drop of the capacity measured with no fault past
--max-capacity-drop, a rise of the publish p99 at an offered load both runs measured past
--max-load-p99-rise, any anomaly new in NEW, a verdict that was pass and is no
longer, or a configuration missing from NEW is a regression.

Exit status: 0 without regressions, 1 with one, 2 on bad input.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			base, err := reports.ReadSummary(args[0])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			cur, err := reports.ReadSummary(args[1])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			c := reports.Compare(base, cur, th)
			if err := reports.WriteComparison(cmd.OutOrStdout(), c); err != nil {
				return err
			}
			if c.Regressed() {
				return &exitError{code: 1, err: fmt.Errorf("compare: %s regressed against %s", args[1], args[0])}
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&th.ThroughputDrop, "max-throughput-drop", th.ThroughputDrop, "largest tolerated relative drop of msgs/s (0.10 = 10%)")
	cmd.Flags().Float64Var(&th.P99Rise, "max-p99-rise", th.P99Rise, "largest tolerated relative rise of publish and end-to-end p99 latency")
	cmd.Flags().Float64Var(&th.P99FloorMs, "p99-floor-ms", th.P99FloorMs, "ignore p99 rises whose new value is below this many milliseconds")
	cmd.Flags().Float64Var(&th.CapacityDrop, "max-capacity-drop", th.CapacityDrop, "largest tolerated relative drop of the capacity measured with no fault in force")
	cmd.Flags().Float64Var(&th.LoadP99Rise, "max-load-p99-rise", th.LoadP99Rise, "largest tolerated relative rise of the publish p99 at an offered load both runs measured")
	return cmd
}
