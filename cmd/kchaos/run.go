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
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/broker"
	"github.com/kchaos/kchaos/loadgen"
	"github.com/kchaos/kchaos/reports"
	"github.com/kchaos/kchaos/run"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/target"
	"github.com/kchaos/kchaos/workloads"
)

func init() { commands = append(commands, newRunCmd) }

func newRunCmd() *cobra.Command {
	var (
		bootstrap  string
		out        string
		linear     bool
		seed       int64
		sets       []string
		spec       target.Spec
		clientFile string
		driverFile string
		keepData   bool
		minFree    string
	)
	cmd := &cobra.Command{
		Use:   "run WORKLOAD.yaml [--bootstrap host:port,... [--cluster-file FILE]] [--out DIR]",
		Short: "Run a workload file: every matrix combination, then check each history",
		Long: `run loads and validates a workload file, expands its matrix and runs each
combination in turn: against a fresh embedded local cluster (default; data under
DIR/CONFIG/cluster) or the cluster named by --bootstrap, whose faults the ssh driver makes with
the commands of --cluster-file (see chaos.SSHCluster). Each configuration gets a folder with
its history.jsonl, HdrHistogram interval logs, per-second series, result.json and the checker's
verdict.json. Ctrl-C stops the run in progress and still checks what ran.

Faults on the embedded cluster go through link proxies (--chaos-driver local, the default) or,
as root on Linux, through real packets (--chaos-driver netns): each broker in its own network
namespace, cuts as nftables rules, bandwidth as an htb qdisc (latency and loss need netem), a
full disk as a filled tmpfs data directory of --netns-disk bytes.

A workload's claims section makes it an experiment for claims of CLAIMS.md: its trials
repeat every configuration with new seeds (trial N replays with --seed SEED+N-1) until every
claim is decided or the trials or their budget run out, each trial into DIR/trial-N when the
workload asks for more than one.

Exit status: 0 when every claim the workload declares held and every configuration kept
the guarantees it claims; 1 when a claim was refuted, when a claim stayed unknown after its
trials (the experiment did not show what it must), or when a configuration broke a
guarantee it claims, except by the anomaly a claim runs it on its unsafe side to show; 2
on bad input or when a configuration could not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			defer loadgen.TuneGC()()
			wopts, err := clientOptions(clientFile, driverFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			plan, err := workloads.LoadWith(args[0], wopts)
			if err != nil {
				return err
			}
			clients, err := resolveClients(plan, bootstrap, cmd.ErrOrStderr())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if spec.Props, err = parseSets(sets); err != nil {
				return err
			}
			if err := broker.ValidateProps(spec.Props); err != nil {
				return err
			}
			if spec.Bootstrap, err = clients.bootstrap(); err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := spec.Validate(); err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("out", plan.Workload.Name+"-"+time.Now().Format("20060102-150405"))
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if seed == 0 {
				seed = time.Now().UnixNano()
			}
			spec.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			targets, err := target.Open(spec)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer targets.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "chaos seed %d (replay with --seed %d)\n", seed, seed)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			minFreeBytes, err := workloads.ParseSize(minFree)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("run: --min-free: %w", err)}
			}
			rep, _, err := runAndReport(ctx, cmd.OutOrStdout(), plan, out, run.Options{Targets: targets, Seed: seed, Linear: linear,
				KeepData: keepData, MinFree: uint64(minFreeBytes), Clients: clients.byConfig(), Logger: spec.Logger, Status: cmd.OutOrStdout()})
			if err != nil {
				return err
			}
			return exitStatus(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().StringVar(&bootstrap, "bootstrap", "", "comma-separated brokers of an external cluster (default: an embedded local cluster)")
	cmd.Flags().StringVar(&spec.ClusterFile, "cluster-file", "", "with --bootstrap: ssh cluster file whose per-fault commands make the workload's faults on the external cluster")
	cmd.Flags().StringVar(&out, "out", "", "run directory (default out/NAME-TIMESTAMP)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "broker setting key=value for the embedded cluster (server.properties names)")
	cmd.Flags().Int64Var(&seed, "seed", 0, "seed of the chaos schedule and its random choices (default: from the clock, printed)")
	cmd.Flags().StringVar(&spec.ChaosDriver, "chaos-driver", "local", "chaos driver of the embedded cluster: local (userspace link proxies, no root) or netns (root on Linux: each broker in its own network namespace, cuts as nftables rules, a tmpfs data directory per broker)")
	cmd.Flags().StringVar(&spec.NetnsDisk, "netns-disk", target.DefaultNetnsDisk, "size of each broker's tmpfs data directory with --chaos-driver netns")
	cmd.Flags().StringVar(&clientFile, "client-config", "", "Kafka client properties file (Java .properties: security.protocol, ssl.*, sasl.*, acks, linger.ms, ...) for every client of the run")
	cmd.Flags().StringVar(&driverFile, "driver-config", "", "OpenMessaging Benchmark Kafka driver file (kafka.yaml): replication factor, topic configs and client properties")
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "keep the embedded brokers' data directories of configurations that passed (a failed configuration's are always kept)")
	cmd.Flags().StringVar(&minFree, "min-free", "2GiB", "free space the run directory's file system keeps: below it the configuration in progress stops producing, is checked and written, and the run ends")
	cmd.Flags().BoolVar(&linear, "linear", true, "also check each partition's log for linearizability with porcupine")
	return cmd
}

// runAndReport runs plan into out, stopping its trials once every claim it declares is
// decided, prints the results table and writes the report. It returns the report (nil when
// nothing ran) and the outcomes; a run that could not complete is an exit status 2 error
// (after the report of what ran).
func runAndReport(ctx context.Context, w io.Writer, plan *workloads.Plan, out string, opts run.Options) (*reports.Run, []run.Outcome, error) {
	opts.AfterTrial = func(out string, info *rundir.RunInfo) (bool, error) {
		if len(info.Claims) == 0 {
			return false, nil
		}
		r, err := reports.LoadTrials(out, version, info, nil)
		if err != nil {
			return false, err
		}
		return reports.Decided(r.Summary.Claims, len(info.Trials), info.MaxTrials), nil
	}
	outs, runErr := run.Plan(ctx, plan, out, opts)
	if runErr != nil && !errors.Is(runErr, run.ErrDiskFull) && len(outs) == 0 {
		return nil, outs, &exitError{code: 2, err: runErr}
	}
	run.WriteTable(w, outs)
	var rep *reports.Run
	if len(outs) > 0 {
		var err error
		if rep, err = writeReport(w, out); err != nil {
			return nil, outs, err
		}
	}
	fmt.Fprintf(w, "\nrun directory: %s (%s)\n", out, dirSize(out))
	if runErr != nil {
		return rep, outs, &exitError{code: 2, err: runErr}
	}
	return rep, outs, nil
}

// exitStatus prints the claims the run declared and why it fails, if it does: an exit
// status 1 error (see reports.Failures).
func exitStatus(w io.Writer, rep *reports.Run) error {
	if rep == nil {
		return nil
	}
	if err := reports.WriteClaimsTable(w, &rep.Summary); err != nil {
		return err
	}
	fails := reports.Failures(&rep.Summary)
	if len(fails) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	for _, f := range fails {
		fmt.Fprintln(w, "FAIL:", f)
	}
	return &exitError{code: 1, err: fmt.Errorf("run: %d reasons to fail (listed above)", len(fails))}
}

// dirSize returns the bytes under dir, for the last line of a run.
func dirSize(dir string) string {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, ierr := d.Info(); ierr == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
