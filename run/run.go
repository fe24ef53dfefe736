// Package run is one workload run, DESIGN.md's data flow as a sequence: for each configuration
// of a plan, start its target, open its history, observe the cluster, start the chaos
// schedule and the load, let the load drain, heal every fault, take the target down, then
// check the history and write the verdict. `kchaos run` and the end-to-end tests run
// workloads through it; the load is reached only through the Load seam.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/loadgen"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/target"
	"github.com/kchaos/kchaos/workloads"
)

// Options say where and how a run's configurations run.
type Options struct {
	// Targets starts each configuration's target; required.
	Targets *target.Provider
	// Load runs each configuration's producers and consumers; default InProcess{}.
	Load Load
	// KeepData keeps the embedded brokers' data directories of configurations that passed;
	// by default only a failed configuration's are kept.
	KeepData bool
	// MinFree is the free space the run directory's file system keeps: below it the
	// configuration in progress stops its load, is checked and written, and the run ends with
	// ErrDiskFull. Default DefaultMinFree.
	MinFree uint64
	// Clients says, by configuration name, how its clients connect (TLS, SASL) and which
	// client properties they carry; a missing entry is plaintext with the workload's settings.
	Clients map[string]*clientconfig.Config
	// Seed seeds the chaos schedule, its random choices and the link proxies; print it.
	Seed int64
	// Linear also checks each partition's log with porcupine, LinearTimeout per partition
	// (default 30s).
	Linear        bool
	LinearTimeout time.Duration
	// Logger receives warnings of the launcher, the load and the chaos runner; default
	// slog.Default().
	Logger *slog.Logger
	// Status receives each configuration's header, the load's status line, faults that were
	// not applied and the checker's summary; default io.Discard.
	Status io.Writer
	// AfterTrial, when set, is called after each trial but the last with the run directory
	// and what ran so far; stop ends the run before the next trial (every claim decided).
	AfterTrial func(out string, info *rundir.RunInfo) (stop bool, err error)
}

func (o *Options) defaults() {
	if o.Load == nil {
		o.Load = InProcess{}
	}
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	if o.LinearTimeout <= 0 {
		o.LinearTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Status == nil {
		o.Status = io.Discard
	}
}

// Outcome is what one configuration's run left.
type Outcome struct {
	// Config is the configuration's name, Trial the trial it ran in (from 1); Dir its folder.
	Config string
	Trial  int
	Dir    string
	// Result is what the load measured; Verdict the checker's judgement of the history.
	Result  *rundir.Result
	Verdict *checker.Result
	// Bytes is what the configuration's folder holds once settled.
	Bytes int64
}

// Plan runs plan's trials: every configuration in turn, each into out/CONFIG (with more than
// one trial, out/trial-N/CONFIG), printing a header line for each, then the next trial with
// new seeds (TrialSeeds) until plan.Trials ran, plan.TrialBudget was spent or
// Options.AfterTrial stops it. It first checks the plan's claims (CheckClaims), and records
// the claims and trials in out/run.json (rundir.RunInfo). It stops before the next
// configuration when ctx ends, and at the first configuration that cannot run or be
// checked, returning the outcomes so far with the error.
func Plan(ctx context.Context, plan *workloads.Plan, out string, opts Options) ([]Outcome, error) {
	opts.defaults()
	return runTrials(ctx, plan, out, opts)
}

// runPlan runs every configuration of plan once, as trial n, into dir/CONFIG: with the chaos
// seed of opts and the workload seed moved on by n-1 (TrialSeeds).
func runPlan(ctx context.Context, plan *workloads.Plan, dir string, opts Options, n int) ([]Outcome, error) {
	var outs []Outcome
	for _, rc := range plan.Configs {
		if ctx.Err() != nil {
			break
		}
		_, rc.Seed = TrialSeeds(0, rc.Seed, n)
		fmt.Fprintf(opts.Status, "== %s: %s\n", plan.Workload.Name, rc.Config)
		o, err := Config(ctx, rc, filepath.Join(dir, configDir(rc.Config)), opts)
		if o != nil {
			o.Trial = n
			outs = append(outs, *o)
		}
		if err != nil {
			return outs, err
		}
	}
	return outs, nil
}

// Config runs the configuration rc into dir and checks its history. An error running it is
// "run CONFIG: ..."; an error checking it is the checker's.
//
// The run directory's file system is watched while the configuration runs: when it is about to
// fill (Options.MinFree), the load stops, and the configuration is healed, checked and written
// all the same; its Outcome comes back with an error wrapping ErrDiskFull. Once checked, the
// history is compressed and, unless it failed or KeepData, the brokers' data is removed.
func Config(ctx context.Context, rc workloads.RunConfig, dir string, opts Options) (*Outcome, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	guard := guardDisk(dir, opts.MinFree)
	res, err := runConfig(ctx, rc, dir, guard.low, opts)
	full := guard.stop()
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", rc.Config, errors.Join(err, full))
	}
	if full != nil {
		fmt.Fprintf(opts.Status, "warning: %v; checking what ran\n", full)
	}
	verdict, err := Check(opts.Status, filepath.Join(dir, rundir.HistoryFile), opts.Linear, opts.LinearTimeout)
	if err != nil {
		return nil, err
	}
	o := &Outcome{Config: rc.Config, Dir: dir, Result: res, Verdict: verdict}
	size, err := settle(dir, verdict.Failed(), opts.KeepData)
	if err != nil {
		return o, err
	}
	o.Bytes = size
	if full != nil {
		return o, fmt.Errorf("run %s: %w", rc.Config, full)
	}
	return o, nil
}

// runConfig runs one configuration into dir: target up, history open, observer and faults
// started, load run and drained, everything healed, history closed, target down.
// Closing stopLoad ends the producing early (the disk guard).
func runConfig(ctx context.Context, rc workloads.RunConfig, dir string, stopLoad <-chan struct{}, opts Options) (*rundir.Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	faults, err := chaos.Parse(rc.Chaos)
	if err != nil {
		return nil, err
	}
	runID := newRunID()
	topics := loadgen.TopicNames(rc, runID)
	// "topic-N" in a workload's chaos section is the run's N-th topic.
	chaos.RenameTopics(faults, func(t string) string {
		if m := workloadTopic.FindStringSubmatch(t); m != nil {
			if n, _ := strconv.Atoi(m[1]); n < len(topics) {
				return topics[n]
			}
		}
		return t
	})
	client := opts.Clients[rc.Config]
	tg, err := opts.Targets.Start(ctx, rc, dir, opts.Seed, client)
	if err != nil {
		return nil, err
	}
	// What the target fails to take down it logs; the run's result stands.
	defer tg.Close()
	if rc.Performance != nil {
		if _, err := measurePerformance(ctx, rc, dir, tg.Bootstrap(), client, stopLoad, opts); err != nil {
			return nil, err
		}
	}
	f, err := os.Create(filepath.Join(dir, rundir.HistoryFile))
	if err != nil {
		return nil, err
	}
	hw := history.NewWriter(f)
	minISR, _ := strconv.Atoi(rc.TopicConfigStrings()["min.insync.replicas"])
	octx, stopObserver := context.WithCancel(ctx)
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		chaos.Observe(octx, tg.Resolver(), hw, topics, minISR, 500*time.Millisecond)
	}()
	defer func() { stopObserver(); <-observed }()
	var runner *chaos.Runner
	consumerFaults := make(chan chaos.ConsumerFault, 16)
	if len(faults) > 0 {
		driver := tg.Driver()
		if driver == nil && slices.ContainsFunc(faults, func(f chaos.Fault) bool {
			return f.Kind.Class() != "consumer" && f.Kind.Class() != "membership"
		}) {
			f.Close()
			return nil, errors.New("the workload has faults, but with --bootstrap no chaos driver can reach the cluster (give --cluster-file for the ssh driver, or use the embedded cluster)")
		}
		// Membership faults go through the admin API; consumer faults to the load's consumers.
		driver = chaos.WithMembership(driver, tg.Resolver())
		withConsumers := chaos.WithConsumers(driver, func(cf chaos.ConsumerFault) error {
			select {
			case consumerFaults <- cf:
				return nil
			default:
				return errors.New("chaos: consumer fault queue full")
			}
		})
		runner, err = chaos.Start(ctx, faults, chaos.Env{Seed: opts.Seed, Duration: time.Duration(rc.Warmup + rc.Duration),
			Driver: withConsumers, Resolver: tg.Resolver(), History: hw, RunDir: dir, Logger: opts.Logger})
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	res, runErr := opts.Load.Run(ctx, LoadJob{Config: rc, RunID: runID, Bootstrap: tg.Bootstrap(), Client: client, History: hw, OutDir: dir, Stop: stopLoad,
		ConsumerFaults: consumerFaults, Logger: opts.Logger, Status: opts.Status})
	stopObserver()
	<-observed
	var healErr error
	if runner != nil {
		healErr = runner.Heal()
		for _, ferr := range runner.Failures() {
			fmt.Fprintf(opts.Status, "warning: fault not applied: %v\n", ferr)
		}
	}
	werr := hw.Close()
	ferr := f.Close()
	if healErr != nil {
		return nil, fmt.Errorf("heal: %w", healErr)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return nil, runErr
	}
	if err := errors.Join(werr, ferr); err != nil {
		return nil, err
	}
	return res, nil
}

// WriteTable prints one line per configuration in aligned columns: counts, rates and verdict.
func WriteTable(w io.Writer, outs []Outcome) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// acks=0 sends are never acknowledged, so SENT/s is their throughput; ACKED/s is for the rest.
	fmt.Fprintln(tw, "\nCONFIG\tSENT\tACKED\tFAILED\tINDETERMINATE\tDRAINED\tSENT/s\tACKED/s\tVERDICT")
	for _, o := range outs {
		r := o.Result
		var sent, acked float64
		if s := r.Elapsed.Seconds(); s > 0 {
			sent, acked = float64(r.Sent)/s, float64(r.Acked)/s
		}
		verdict := "ok"
		if o.Verdict.Failed() {
			verdict = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%s\n", o.Config, r.Sent, r.Acked, r.Failed, r.Indeterminate, r.Drained, sent, acked, verdict)
	}
	tw.Flush()
}

// workloadTopic matches the chaos section's name for the workload's N-th topic.
var workloadTopic = regexp.MustCompile(`^topic-(\d+)$`)

var unsafeDirChars = regexp.MustCompile(`[^A-Za-z0-9._=,-]+`)

// configDir turns a configuration name into a folder name.
func configDir(config string) string { return unsafeDirChars.ReplaceAllString(config, "_") }
