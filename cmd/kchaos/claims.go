package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/broker"
	"github.com/kchaos/kchaos/loadgen"
	"github.com/kchaos/kchaos/reports"
	"github.com/kchaos/kchaos/run"
	"github.com/kchaos/kchaos/target"
	"github.com/kchaos/kchaos/workloads"
)

func init() { commands = append(commands, newClaimsCmd) }

func newClaimsCmd() *cobra.Command {
	var (
		out      string
		seed     int64
		sets     []string
		linear   bool
		keepData bool
		minFree  string
	)
	cmd := &cobra.Command{
		Use:   "claims [NAME...]",
		Short: "Run the shipped claim workloads (or those named) and print one table of the claims they answer",
		Long: `claims runs every shipped workload file claim-NN-*.yaml, or those named (a file
path, a shipped file's name, or a claim number: 8, 08 and claim-08 name every claim-08
file), each as kchaos run does into DIR/NAME on the embedded local cluster, one after the
other. It prints one table of the claims the files declare (status, each side's evidence
and the trials showing it, wall time) and writes DIR/index.html linking each claim to its
run's report.

Exit status: 0 when every claim held and no configuration broke a guarantee it claims; 1
otherwise (see kchaos run); 2 on bad input or when a workload could not run.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			defer loadgen.TuneGC()()
			names, err := claimFiles(args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			props, err := parseSets(sets)
			if err != nil {
				return err
			}
			if err := broker.ValidateProps(props); err != nil {
				return err
			}
			minFreeBytes, err := workloads.ParseSize(minFree)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("claims: --min-free: %w", err)}
			}
			var plans []*workloads.Plan
			for _, n := range names {
				p, err := loadClaimFile(n)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if err := run.CheckClaims(p); err != nil {
					return &exitError{code: 2, err: err}
				}
				plans = append(plans, p)
			}
			if out == "" {
				out = filepath.Join("out", "claims-"+time.Now().Format("20060102-150405"))
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if seed == 0 {
				seed = time.Now().UnixNano()
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			targets, err := target.Open(target.Spec{Props: props, Logger: logger})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer targets.Close()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "chaos seed %d (replay with --seed %d); %d workload files\n", seed, seed, len(plans))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			start := time.Now()
			var runs []reports.ClaimRun
			failed := false
			for _, p := range plans {
				if ctx.Err() != nil {
					break
				}
				dir := strings.TrimSuffix(filepath.Base(p.File), filepath.Ext(p.File))
				fmt.Fprintf(w, "\n##### %s\n", p.File)
				t0 := time.Now()
				rep, _, err := runAndReport(ctx, w, p, filepath.Join(out, dir), run.Options{Targets: targets, Seed: seed, Linear: linear,
					KeepData: keepData, MinFree: uint64(minFreeBytes), Logger: logger, Status: w})
				cr := reports.ClaimRun{File: p.File, Dir: dir, Wall: time.Since(t0), Err: err}
				if rep != nil {
					cr.Summary = &rep.Summary
					if err := exitStatus(w, rep); err != nil {
						failed = true
					}
				}
				if err != nil {
					failed = true
					fmt.Fprintf(w, "%s: %v\n", p.File, err)
				}
				runs = append(runs, cr)
			}
			total := time.Since(start)
			rows := reports.ClaimRows(runs)
			fmt.Fprintf(w, "\n")
			if err := reports.WriteClaimsIndexTable(w, rows); err != nil {
				return err
			}
			index := filepath.Join(out, "index.html")
			if err := reports.WriteClaimsIndex(index, rows, len(runs), total); err != nil {
				return err
			}
			fmt.Fprintf(w, "\ntotal wall time %s; index: %s (%s)\n", total.Round(time.Second), index, dirSize(out))
			for _, r := range runs {
				if r.Err != nil {
					var ee *exitError
					if errors.As(r.Err, &ee) && ee.code == 2 {
						return &exitError{code: 2, err: fmt.Errorf("claims: %s could not run: %w", r.File, r.Err)}
					}
				}
			}
			if failed {
				return &exitError{code: 1, err: errors.New("claims: some claims did not hold (listed above)")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder of the runs and index.html (default out/claims-TIMESTAMP)")
	cmd.Flags().Int64Var(&seed, "seed", 0, "chaos seed of every run's first trial (default: from the clock, printed)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "broker setting key=value for the embedded cluster (server.properties names)")
	cmd.Flags().BoolVar(&linear, "linear", true, "also check each partition's log for linearizability with porcupine")
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "keep the embedded brokers' data directories of configurations that passed")
	cmd.Flags().StringVar(&minFree, "min-free", "2GiB", "free space the runs' file system keeps (see kchaos run)")
	return cmd
}

// claimNumber matches a claim given by number: "8", "08", "claim-08".
var claimNumber = regexp.MustCompile(`^(?:claim-)?(\d{1,2})$`)

// claimFiles resolves the command's arguments to workload files: every shipped claim file
// without arguments; else each argument's file path, shipped file name, or the shipped
// files of its claim number.
func claimFiles(args []string) ([]string, error) {
	var shipped []string
	for _, n := range workloads.Shipped() {
		if strings.HasPrefix(n, "claim-") {
			shipped = append(shipped, n)
		}
	}
	if len(args) == 0 {
		return shipped, nil
	}
	var out []string
	for _, a := range args {
		if st, err := os.Stat(a); err == nil && !st.IsDir() {
			out = append(out, a)
			continue
		}
		found := false
		if m := claimNumber.FindStringSubmatch(a); m != nil {
			n, _ := strconv.Atoi(m[1])
			prefix := fmt.Sprintf("claim-%02d-", n)
			for _, s := range shipped {
				if strings.HasPrefix(s, prefix) {
					out, found = append(out, s), true
				}
			}
		}
		for _, s := range shipped {
			if !found && (s == a || strings.TrimSuffix(s, ".yaml") == a) {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("claims: %q is no file and names no shipped claim workload (%s)", a, strings.Join(shipped, ", "))
		}
	}
	return out, nil
}

// loadClaimFile loads a workload file by path, or a shipped one by name.
func loadClaimFile(name string) (*workloads.Plan, error) {
	if _, err := os.Stat(name); err == nil {
		return workloads.Load(name)
	}
	return workloads.Open(name)
}
