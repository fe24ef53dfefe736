package run

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/loadgen"
	"github.com/kchaos/kchaos/reports"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/workloads"
)

// Reasons a run stopped running trials (rundir.RunInfo.Stopped).
const (
	StoppedDecided     = "every claim was decided"
	StoppedTrials      = "all trials ran"
	StoppedBudget      = "the trial budget was spent"
	StoppedCancelled   = "interrupted"
	StoppedFailedToRun = "a configuration could not run"
)

// TrialSeeds returns the chaos seed and the workload seed of trial n (from 1) of a run
// whose first trial has seed and workloadSeed: each trial adds n-1 to both, so trial n
// replays with --seed seed+n-1.
func TrialSeeds(seed, workloadSeed int64, n int) (int64, int64) {
	return seed + int64(n-1), workloadSeed + int64(n-1)
}

// ClaimInputs are the plan's configurations as its claims see them before the run: the
// history header's parameters and the chaos section's faults.
func ClaimInputs(plan *workloads.Plan) ([]reports.ClaimInput, error) {
	var out []reports.ClaimInput
	for i := range plan.Configs {
		rc := &plan.Configs[i]
		faults, err := chaos.Parse(rc.Chaos)
		if err != nil {
			return nil, err
		}
		in := reports.ClaimInput{Config: rc.Config, Params: reports.HeaderParams(loadgen.RunHeader(rc, "", nil, nil, nil))}
		for _, f := range faults {
			in.Faults = append(in.Faults, reports.FaultSpec{Kind: string(f.Kind), Target: f.Target.String(), For: f.For.D()})
		}
		out = append(out, in)
	}
	return out, nil
}

// CheckClaims checks that every claim plan declares has a rule and that the configurations
// of its sides make its experiment (see reports.CheckClaims).
func CheckClaims(plan *workloads.Plan) error {
	inputs, err := ClaimInputs(plan)
	if err != nil {
		return err
	}
	return reports.CheckClaims(plan.Claims, inputs)
}

// trialDir is the folder of trial n's configurations: out itself for a plan of one trial,
// out/trial-N otherwise.
func trialDir(plan *workloads.Plan, out string, n int) (abs, rel string) {
	if plan.Trials <= 1 {
		return out, ""
	}
	rel = rundir.TrialDir(n)
	return filepath.Join(out, rel), rel
}

// writeRunInfo writes info to out/run.json.
func writeRunInfo(out string, info *rundir.RunInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, rundir.RunFile), append(b, '\n'), 0o644)
}

// runTrials runs plan's trials into out (see Plan) and records them in out/run.json.
func runTrials(ctx context.Context, plan *workloads.Plan, out string, opts Options) ([]Outcome, error) {
	if err := CheckClaims(plan); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	info := &rundir.RunInfo{Workload: plan.Workload.Name, File: plan.File, Claims: reports.Decls(plan.Claims), MaxTrials: plan.Trials,
		BudgetSeconds: plan.TrialBudget.Seconds()}
	start := time.Now()
	var outs []Outcome
	var runErr error
	for n := 1; ; n++ {
		seed, wseed := TrialSeeds(opts.Seed, plan.Configs[0].Seed, n)
		dir, rel := trialDir(plan, out, n)
		if plan.Trials > 1 {
			fmt.Fprintf(opts.Status, "=== trial %d of at most %d (chaos seed %d, workload seed %d)\n", n, plan.Trials, seed, wseed)
		}
		t0 := time.Now()
		trial := rundir.Trial{Trial: n, Dir: rel, Seed: seed, WorkloadSeed: wseed}
		topts := opts
		topts.Seed = seed
		var trialOuts []Outcome
		trialOuts, runErr = runPlan(ctx, plan, dir, topts, n)
		for _, o := range trialOuts {
			trial.Configs = append(trial.Configs, o.Config)
		}
		outs = append(outs, trialOuts...)
		trial.Seconds = time.Since(t0).Seconds()
		info.Trials = append(info.Trials, trial)
		info.Seconds = time.Since(start).Seconds()
		switch {
		case runErr != nil:
			info.Stopped = StoppedFailedToRun
		case ctx.Err() != nil:
			info.Stopped = StoppedCancelled
		case n >= plan.Trials:
			info.Stopped = StoppedTrials
		case plan.TrialBudget > 0 && time.Since(start)+time.Since(start)/time.Duration(n) > plan.TrialBudget:
			info.Stopped = StoppedBudget
		case opts.AfterTrial != nil:
			stop, err := opts.AfterTrial(out, info)
			if err != nil {
				runErr, info.Stopped = err, StoppedFailedToRun
			} else if stop {
				info.Stopped = StoppedDecided
			}
		}
		if err := writeRunInfo(out, info); err != nil && runErr == nil {
			runErr = err
		}
		if info.Stopped != "" {
			return outs, runErr
		}
	}
}
