package reports

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/workloads"
)

// A claim of CLAIMS.md is an experiment a workload file declares (workloads.Claim): the
// configurations on its unsafe side (the setting the lore warns about) and on its safe side
// (the one it recommends), run under the same seeded faults, trial after trial. Each claim has
// one rule here: what each side's configurations and faults must be, and what evidence counts,
// only from the mechanism the claim names. The claim held when the unsafe side showed the
// predicted anomaly and the safe side never did; it is refuted when the safe side showed it;
// it is unknown when the unsafe side never showed it (Tried says what ran), and not exercised
// when no configuration of the run was on either side.

// ClaimInput is what one configuration brings to the claims: its parameters as the history
// header names them (see HeaderParams) and its faults.
type ClaimInput struct {
	Config string
	Params map[string]string
	Faults []FaultSpec
}

// FaultSpec is one fault of a configuration as a claim sees it.
type FaultSpec struct {
	// Kind and Target are as the chaos section writes them (kinds resolved from aliases).
	Kind, Target string
	// Nodes is how many brokers it hit; 0 before the run, when the target is not resolved.
	Nodes int
	// For is how long it lasted (0 for instant kinds).
	For time.Duration
}

// rule answers one claim of CLAIMS.md.
type rule struct {
	id   int
	text string
	// anomaly is what the unsafe side must show and the safe side never, in words.
	anomaly string
	// unsafe and safe check a configuration of each side, faults the faults of every
	// configuration of both; each returns what is missing, "" when nothing. Nil accepts all.
	unsafe, safe, faults func(in *ClaimInput) string
	// all is set for a rule that compares every configuration (claim 7): its claim may
	// have no sides.
	all bool
	// count is the evidence one configuration shows: the anomaly's count from the claim's
	// mechanism only, and a note on what was left out or measured beside it.
	count func(c *ConfigSummary) (int64, string)
	// exercised, when set, says whether a safe configuration was put to the test (some
	// write refused, the partition offline), with what it showed; a claim whose safe side
	// never was stays unknown.
	exercised func(c *ConfigSummary) (bool, string)
	// excuses are the checker anomalies the unsafe side is run to show: there they do not
	// count against the run's exit status (Failures).
	excuses []string
	// judge replaces the counting contrast, for claims that compare costs or group
	// behaviour rather than count one anomaly.
	judge func(r *rule, x *experiment) ClaimResult
	// measures is set for a rule judged from noisy measurements (medians of capacities,
	// latencies, drain times) rather than from anomalies that one occurrence proves: its
	// verdict is final only once every trial the workload allows has run (see Decided).
	measures bool
}

// experiment is one declared claim's configurations in a run.
type experiment struct {
	decl         rundir.ClaimDecl
	unsafe, safe []*ConfigSummary
	// all are the configurations of both sides, or every configuration of a claim without
	// sides.
	all    []*ConfigSummary
	trials []int
}

// ruleFor returns the rule of claim id, or nil.
func ruleFor(id int) *rule {
	for i := range claimRules {
		if claimRules[i].id == id {
			return &claimRules[i]
		}
	}
	return nil
}

// Decided reports whether the claims of a run of trials trials out of max are final, so
// that no further trial could change them: every declared claim is held, refuted or not
// exercised, and a claim judged from measurements has had all max trials (one noisy trial
// near a margin must not decide it).
func Decided(claims []ClaimResult, trials, max int) bool {
	for _, c := range claims {
		if c.Status == ClaimUnknown {
			return false
		}
		if c.Status == ClaimNotExercised {
			continue
		}
		if r := ruleFor(c.ID); r != nil && r.measures && trials < max {
			return false
		}
	}
	return true
}

// JudgeClaims answers every claim of CLAIMS.md from the configurations of a run and the
// claims its workload declared (info; nil declares none).
func JudgeClaims(cds []*ConfigData, info *rundir.RunInfo) []ClaimResult {
	cs := make([]*ConfigSummary, len(cds))
	for i, cd := range cds {
		cs[i] = cd.Summary
	}
	var out []ClaimResult
	for i := range claimRules {
		r := &claimRules[i]
		var decl *rundir.ClaimDecl
		if info != nil {
			for j := range info.Claims {
				if info.Claims[j].ID == r.id {
					decl = &info.Claims[j]
				}
			}
		}
		if decl == nil {
			out = append(out, ClaimResult{ID: r.id, Text: r.text, Status: ClaimNotExercised,
				Measured: "the workload declares no experiment for this claim"})
			continue
		}
		x := newExperiment(*decl, cs)
		var res ClaimResult
		switch p := x.problems(r); {
		case len(x.all) == 0:
			res = ClaimResult{ID: r.id, Text: r.text, Status: ClaimNotExercised, Measured: "no configuration of the run is on either side"}
		case len(p) > 0:
			res.Status, res.Measured = ClaimUnknown, "the configurations do not make the experiment"
			res.Tried = "missing: " + strings.Join(p, "; ")
		case r.judge != nil:
			res = r.judge(r, x)
		default:
			res = contrast(r, x)
		}
		res.ID, res.Text, res.Pos, res.Trials = r.id, r.text, decl.Pos, len(x.trials)
		for _, c := range x.all {
			if !slices.Contains(res.Configs, c.Config) {
				res.Configs = append(res.Configs, c.Config)
			}
		}
		out = append(out, res)
	}
	return out
}

func newExperiment(decl rundir.ClaimDecl, cs []*ConfigSummary) *experiment {
	x := &experiment{decl: decl}
	for _, c := range cs {
		switch {
		case slices.Contains(decl.UnsafeConfigs, c.Config):
			x.unsafe = append(x.unsafe, c)
		case slices.Contains(decl.SafeConfigs, c.Config):
			x.safe = append(x.safe, c)
		case !decl.All:
			continue
		}
		x.all = append(x.all, c)
		if !slices.Contains(x.trials, c.Trial) {
			x.trials = append(x.trials, c.Trial)
		}
	}
	sort.Ints(x.trials)
	return x
}

// inputOf is what a configuration of a run brought to the claims.
func inputOf(c *ConfigSummary) *ClaimInput {
	in := &ClaimInput{Config: c.Config, Params: c.Params}
	for _, f := range c.Faults {
		in.Faults = append(in.Faults, FaultSpec{Kind: f.Kind, Target: f.Target, Nodes: len(f.Nodes),
			For: time.Duration((f.End - f.Start) * float64(time.Second))})
	}
	return in
}

// problems lists what the configurations of x lack for rule r (one line per problem).
func (x *experiment) problems(r *rule) []string {
	var out []string
	check := func(c *ConfigSummary, f func(*ClaimInput) string) {
		if f == nil {
			return
		}
		if p := f(inputOf(c)); p != "" && !slices.Contains(out, c.Config+": "+p) {
			out = append(out, c.Config+": "+p)
		}
	}
	for _, c := range x.unsafe {
		check(c, r.unsafe)
	}
	for _, c := range x.safe {
		check(c, r.safe)
	}
	for _, c := range x.all {
		check(c, r.faults)
	}
	return out
}

// contrast judges a claim by counting its anomaly on each side, trial by trial.
func contrast(r *rule, x *experiment) ClaimResult {
	res := ClaimResult{}
	res.Unsafe = countSide(r, x.unsafe, x.decl.Unsafe, x.trials)
	res.Safe = countSide(r, x.safe, x.decl.Safe, x.trials)
	exercised, shown := true, ""
	if r.exercised != nil {
		exercised = false
		var notes []string
		for _, c := range x.safe {
			ok, note := r.exercised(c)
			exercised = exercised || ok
			notes = append(notes, c.Name+": "+note)
		}
		shown = strings.Join(notes, "; ")
	}
	switch {
	case res.Safe.Observed > 0:
		res.Status = ClaimRefuted
	case res.Unsafe.Observed > 0 && exercised:
		res.Status = ClaimHeld
	case res.Unsafe.Observed > 0:
		res.Status = ClaimUnknown
		res.Tried = "the safe side was never put to the test (" + shown + ")"
	default:
		res.Status = ClaimUnknown
		res.Tried = fmt.Sprintf("%s under %s: the unsafe side never showed %s", trialsText(len(x.trials)), faultsText(x.all), r.anomaly)
	}
	res.Measured = fmt.Sprintf("unsafe %s: %s; safe %s: %s", res.Unsafe.Match, sideText(r, res.Unsafe), res.Safe.Match, sideText(r, res.Safe))
	if shown != "" {
		res.Measured += " (" + shown + ")"
	}
	return res
}

// countSide counts r's anomaly on one side's configurations, trial by trial.
func countSide(r *rule, cs []*ConfigSummary, match string, trials []int) *SideResult {
	return walkSide(cs, match, trials, func(c *ConfigSummary) (int64, string) {
		n, note := r.count(c)
		line := fmt.Sprintf("%s: %d", c.Name, n)
		if note != "" {
			line += " (" + note + ")"
		}
		return n, line
	})
}

// walkSide builds one side's result: each configuration of each trial shows n (its count of
// the claim's anomaly, or whatever the claim looks for) and an evidence line; the side
// showed it in a trial when some configuration's n was above 0.
func walkSide(cs []*ConfigSummary, match string, trials []int, show func(c *ConfigSummary) (n int64, line string)) *SideResult {
	s := &SideResult{Match: match, Trials: len(trials)}
	for _, t := range trials {
		seen := false
		for _, c := range cs {
			if c.Trial != t {
				continue
			}
			if !slices.Contains(s.Configs, c.Config) {
				s.Configs = append(s.Configs, c.Config)
			}
			n, line := show(c)
			s.Count += n
			seen = seen || n > 0
			s.Evidence = append(s.Evidence, line)
		}
		if seen {
			s.Observed++
		}
	}
	return s
}

func sideText(r *rule, s *SideResult) string {
	if s.Count == 0 {
		return fmt.Sprintf("no %s in %s [%s]", r.anomaly, trialsText(s.Trials), strings.Join(s.Evidence, "; "))
	}
	return fmt.Sprintf("%d %s, observed in %d of %d trials [%s]", s.Count, r.anomaly, s.Observed, s.Trials, strings.Join(s.Evidence, "; "))
}

func trialsText(n int) string {
	if n == 1 {
		return "1 trial"
	}
	return strconv.Itoa(n) + " trials"
}

// faultsText lists the fault kinds the configurations ran, "no faults" for none.
func faultsText(cs []*ConfigSummary) string {
	var kinds []string
	for _, c := range cs {
		for _, f := range c.Faults {
			if !slices.Contains(kinds, f.Kind) {
				kinds = append(kinds, f.Kind)
			}
		}
	}
	if len(kinds) == 0 {
		return "no faults"
	}
	return "faults " + strings.Join(kinds, ", ")
}

// CheckClaims checks, before a run, that the configurations of each declared claim make
// its experiment: the claim has a rule, its sides' configurations have the settings and
// faults the rule needs (inputs by configuration name). The errors name the claim's place in
// the workload file.
func CheckClaims(claims []workloads.Claim, inputs []ClaimInput) error {
	byName := map[string]*ClaimInput{}
	for i := range inputs {
		byName[inputs[i].Config] = &inputs[i]
	}
	var errs []error
	for _, c := range claims {
		r := ruleFor(c.ID)
		if r == nil {
			errs = append(errs, fmt.Errorf("reports: %s: claim %d: CLAIMS.md has claims 1 to %d", c.Pos, c.ID, len(claimRules)))
			continue
		}
		if c.All && !r.all {
			errs = append(errs, fmt.Errorf("reports: %s: claim %d needs an unsafe and a safe side", c.Pos, c.ID))
			continue
		}
		var probs []string
		check := func(names []string, f func(*ClaimInput) string) {
			for _, n := range names {
				in := byName[n]
				if in == nil || f == nil {
					continue
				}
				if p := f(in); p != "" {
					probs = append(probs, n+": "+p)
				}
			}
		}
		check(c.Unsafe.Configs, r.unsafe)
		check(c.Safe.Configs, r.safe)
		if c.All {
			for _, in := range inputs {
				check([]string{in.Config}, r.faults)
			}
		} else {
			check(c.Unsafe.Configs, r.faults)
			check(c.Safe.Configs, r.faults)
		}
		if len(probs) > 0 {
			errs = append(errs, fmt.Errorf("reports: %s: claim %d (%s): %s", c.Pos, c.ID, r.text, strings.Join(probs, "; ")))
		}
	}
	return errors.Join(errs...)
}

// Decls turns a plan's claims into the run directory's record of them.
func Decls(claims []workloads.Claim) []rundir.ClaimDecl {
	var out []rundir.ClaimDecl
	for _, c := range claims {
		out = append(out, rundir.ClaimDecl{ID: c.ID, Unsafe: c.Unsafe.String(), Safe: c.Safe.String(), UnsafeConfigs: c.Unsafe.Configs,
			SafeConfigs: c.Safe.Configs, All: c.All, Pos: c.Pos})
	}
	return out
}

// Failures lists why a run should fail a nightly job: a refuted claim, a claim left unknown
// after its trials (the experiment did not show what it must), and a configuration that
// broke a guarantee it claims, except by the anomaly a claim runs it on its unsafe side to
// show. None means exit status 0.
func Failures(s *Summary) []string {
	var out []string
	excused := map[string][]string{} // configuration → anomalies its unsafe sides excuse
	for _, c := range s.Claims {
		switch c.Status {
		case ClaimRefuted:
			out = append(out, fmt.Sprintf("claim %d refuted: %s", c.ID, c.Measured))
		case ClaimUnknown:
			why := c.Tried
			if why == "" {
				why = c.Measured
			}
			out = append(out, fmt.Sprintf("claim %d unknown after %s: %s", c.ID, trialsText(c.Trials), why))
		}
		if r := ruleFor(c.ID); r != nil && c.Unsafe != nil {
			for _, n := range c.Unsafe.Configs {
				excused[n] = append(excused[n], r.excuses...)
			}
		}
	}
	for _, c := range s.Configs {
		for _, g := range c.Guarantees {
			if !g.Claimed || g.Status != checker.StatusFail {
				continue
			}
			v := g.Violations
			for _, a := range g.Forbids {
				if slices.Contains(excused[c.Config], a) {
					v -= c.Anomalies[a]
				}
			}
			if v > 0 || len(g.Forbids) == 0 {
				out = append(out, fmt.Sprintf("%s broke %s (%d violations): %s", c.Name, g.Name, g.Violations, g.Claim))
			}
		}
	}
	return out
}
