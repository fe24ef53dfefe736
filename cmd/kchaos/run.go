package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/loadgen"
	"github.com/kchaos/kchaos/workloads"
)

func init() { commands = append(commands, newRunCmd) }

func newRunCmd() *cobra.Command {
	var (
		bootstrap string
		out       string
		linear    bool
	)
	cmd := &cobra.Command{
		Use:   "run WORKLOAD.yaml [--bootstrap host:port,...] [--out DIR]",
		Short: "Run a workload file: every matrix combination, then check each history",
		Long: `run loads and validates a workload file, expands its matrix and runs each
combination in turn: against a fresh embedded local cluster (default; data under
DIR/CONFIG/cluster) or the cluster named by --bootstrap. Each configuration gets a folder with
its history.jsonl, HdrHistogram interval logs, per-second series, result.json and the checker's
verdict.json. Ctrl-C stops the run in progress and still checks what ran.

Exit status: 0 when every claimed guarantee held, 1 when a forbidden anomaly was found, 2 on
bad input or when a configuration could not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := workloads.Load(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("out", plan.Workload.Name+"-"+time.Now().Format("20060102-150405"))
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			var rows []runRow
			failed := 0
			for _, rc := range plan.Configs {
				if ctx.Err() != nil {
					break
				}
				dir := filepath.Join(out, configDir(rc.Config))
				fmt.Fprintf(cmd.OutOrStdout(), "== %s: %s\n", plan.Workload.Name, rc.Config)
				if rc.Chaos != nil {
					fmt.Fprintln(cmd.OutOrStdout(), "warning: the workload has a chaos section but no chaos controller exists yet; no faults are injected")
				}
				res, err := runConfig(ctx, rc, dir, splitList(bootstrap), logger, cmd.OutOrStdout())
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("run %s: %w", rc.Config, err)}
				}
				verdict, err := checkOne(cmd.OutOrStdout(), filepath.Join(dir, historyFile), linear, 30*time.Second)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if verdict.Failed() {
					failed++
				}
				rows = append(rows, runRow{rc.Config, res, verdict.Failed()})
			}
			printRunTable(cmd.OutOrStdout(), rows)
			if len(rows) > 0 {
				if err := writeReport(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nrun directory: %s\n", out)
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("run: %d of %d configurations broke a claimed guarantee", failed, len(rows))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&bootstrap, "bootstrap", "", "comma-separated brokers of an external cluster (default: an embedded local cluster)")
	cmd.Flags().StringVar(&out, "out", "", "run directory (default out/NAME-TIMESTAMP)")
	cmd.Flags().BoolVar(&linear, "linear", false, "also check each partition's log for linearizability with porcupine (slow on long runs; kchaos check --linear does it later)")
	return cmd
}

// runConfig runs one configuration into dir: target up, load, history, target down.
func runConfig(ctx context.Context, rc workloads.RunConfig, dir string, bootstrap []string, logger *slog.Logger, status io.Writer) (*loadgen.Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if len(bootstrap) == 0 {
		brokers := max(1, rc.ReplicationFactor)
		c, err := local.Start(ctx, local.Config{Brokers: brokers, Dir: filepath.Join(dir, "cluster"), Metrics: true, Logger: logger,
			Props: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
		if err != nil {
			return nil, err
		}
		defer c.Stop()
		defer startSampler(c, dir)()
		bootstrap = c.Bootstrap()
	}
	f, err := os.Create(filepath.Join(dir, historyFile))
	if err != nil {
		return nil, err
	}
	hw := history.NewWriter(f)
	res, runErr := loadgen.Run(ctx, rc, loadgen.Options{Bootstrap: bootstrap, OutDir: dir, History: hw, Logger: logger, Status: status})
	werr := hw.Close()
	ferr := f.Close()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return nil, runErr
	}
	if err := errors.Join(werr, ferr); err != nil {
		return nil, err
	}
	return res, nil
}

type runRow struct {
	config string
	res    *loadgen.Result
	failed bool
}

// printRunTable prints one line per configuration in aligned columns.
func printRunTable(w io.Writer, rows []runRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// acks=0 sends are never acknowledged, so SENT/s is their throughput; ACKED/s is for the rest.
	fmt.Fprintln(tw, "\nCONFIG\tSENT\tACKED\tFAILED\tINDETERMINATE\tDRAINED\tSENT/s\tACKED/s\tVERDICT")
	for _, r := range rows {
		var sent, acked float64
		if s := r.res.Elapsed.Seconds(); s > 0 {
			sent, acked = float64(r.res.Sent)/s, float64(r.res.Acked)/s
		}
		verdict := "ok"
		if r.failed {
			verdict = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%s\n", r.config, r.res.Sent, r.res.Acked, r.res.Failed, r.res.Indeterminate, r.res.Drained, sent, acked, verdict)
	}
	tw.Flush()
}

var unsafeDirChars = regexp.MustCompile(`[^A-Za-z0-9._=,-]+`)

// configDir turns a configuration name into a folder name.
func configDir(config string) string { return unsafeDirChars.ReplaceAllString(config, "_") }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
