package rundir

import "strconv"

// RunFile is the run's RunInfo, at the top of a run directory. A run directory without one
// (written before it existed) is one trial whose configuration folders are its children.
const RunFile = "run.json"

// RunInfo is what kchaos run records about a whole run: the claims the workload file is an
// experiment for and the trials that ran. Configuration folders of trial N > 1, or of every
// trial when the workload asks for more than one, live under TrialDir(N).
type RunInfo struct {
	// Workload and File name the workload file.
	Workload string `json:"workload"`
	File     string `json:"file"`
	// Claims are the workload's claims, each side resolved to configuration names.
	Claims []ClaimDecl `json:"claims,omitempty"`
	// MaxTrials and BudgetSeconds are the workload's trials and trialBudget (0: no budget).
	MaxTrials     int     `json:"max_trials"`
	BudgetSeconds float64 `json:"budget_s,omitempty"`
	// Trials are the trials that ran, in order.
	Trials []Trial `json:"trials"`
	// Stopped says why no further trial ran.
	Stopped string `json:"stopped,omitempty"`
	// Seconds is the wall time of all trials.
	Seconds float64 `json:"seconds"`
}

// ClaimDecl is one claim of a workload file: its number in CLAIMS.md, the configurations of
// each side and the matchers that chose them, as written (workloads.Claim).
type ClaimDecl struct {
	ID            int      `json:"id"`
	Unsafe        string   `json:"unsafe,omitempty"`
	Safe          string   `json:"safe,omitempty"`
	UnsafeConfigs []string `json:"unsafe_configs,omitempty"`
	SafeConfigs   []string `json:"safe_configs,omitempty"`
	// All is set for a claim that takes every configuration (no sides).
	All bool `json:"all,omitempty"`
	// Pos is where the claim is written, "file:line".
	Pos string `json:"pos,omitempty"`
}

// Trial is one run of every configuration of a plan.
type Trial struct {
	// Trial numbers it from 1; Dir is its folder relative to the run directory ("" when its
	// configuration folders are the run directory's children).
	Trial int    `json:"trial"`
	Dir   string `json:"dir,omitempty"`
	// Seed is the chaos seed and WorkloadSeed the workload's seed of this trial.
	Seed         int64 `json:"seed"`
	WorkloadSeed int64 `json:"workload_seed"`
	// Configs are the configurations that ran, by name, and Seconds the trial's wall time.
	Configs []string `json:"configs"`
	Seconds float64  `json:"seconds"`
}

// TrialDir is the folder of trial n of a run that has (or may have) several: "trial-N".
func TrialDir(n int) string { return "trial-" + strconv.Itoa(n) }
