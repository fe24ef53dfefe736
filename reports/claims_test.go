package reports

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/rundir"
)

// claimFixture builds one configuration's summary: its parameters over a durable acks=all base,
// its faults, and what it showed.
func claimFixture(config string, trial int, params map[string]string, faults []Fault, show func(*ConfigSummary)) *ConfigData {
	p := map[string]string{"acks": "all", "replication.factor": "3", "min.insync.replicas": "2", "enable.idempotence": "false",
		"max.in.flight": "5", "transactional": "false", "isolation.level": "read_uncommitted", "commit_mode": "manual-after-processing",
		"unclean.leader.election.enable": "false", "flush.messages": "0", "consumer_mode": "group", "partitions": "4", "keys": "none",
		"consumers": "1", "static_membership": "false", "session_timeout": "10s", "max_poll_interval": "5s", "processing_time": "1ms",
		"processing_overhead": "0s", "performance": "false", "abort_ratio": "0", "batch_size": "16KiB", "linger": "5ms"}
	maps.Copy(p, params)
	c := &ConfigSummary{Name: fmt.Sprintf("%s #%d", config, trial), Config: config, Trial: trial, Params: p, Faults: faults,
		Anomalies: map[string]int64{}, Errors: map[string]int64{}, Counts: Counts{Sent: 100, Acked: 100}}
	if show != nil {
		show(c)
	}
	return &ConfigData{Summary: c}
}

// judgeOne judges claim id over the unsafe and safe configurations (several trials).
func judgeOne(t *testing.T, id int, unsafe, safe []*ConfigData) ClaimResult {
	t.Helper()
	decl := rundir.ClaimDecl{ID: id, Unsafe: "u", Safe: "s", Pos: "f.yaml:1"}
	for _, c := range unsafe {
		decl.UnsafeConfigs = append(decl.UnsafeConfigs, c.Summary.Config)
	}
	for _, c := range safe {
		decl.SafeConfigs = append(decl.SafeConfigs, c.Summary.Config)
	}
	for _, c := range JudgeClaims(append(unsafe, safe...), &rundir.RunInfo{Claims: []rundir.ClaimDecl{decl}}) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("claim %d not answered", id)
	return ClaimResult{}
}

// lost shows n acknowledged records lost around faults of kind.
func lost(kind string, n int64) func(*ConfigSummary) {
	return func(c *ConfigSummary) {
		c.Anomalies[checker.Lost] = n
		if n > 0 {
			c.Attribution = map[string]Attribution{checker.Lost: {Faults: map[string]int64{kind: n}}}
		}
	}
}

func kill(target string) []Fault {
	return []Fault{{ID: 1, Kind: "kill", Target: target, Nodes: []int32{1}, Start: 5, End: 10}}
}

// counting is one counting rule's contrast: the two sides' settings and faults, and how a
// configuration shows n instances of the claim's anomaly.
type counting struct {
	id             int
	unsafe, safe   map[string]string
	faults         []Fault
	show           func(n int64) func(*ConfigSummary)
	exercise       func(*ConfigSummary)
	unknownMention string
}

var countingRules = []counting{
	{id: 1, unsafe: map[string]string{"acks": "0"}, safe: map[string]string{"acks": "all"}, faults: []Fault{{Kind: "restart", Target: "leader(t,0)"}},
		show: func(n int64) func(*ConfigSummary) {
			return func(c *ConfigSummary) {
				if c.Params["acks"] == "0" {
					c.UnacknowledgedUnread = n
				} else {
					c.Anomalies[checker.Lost] = n
				}
			}
		}},
	{id: 2, unsafe: map[string]string{"acks": "1"}, safe: map[string]string{},
		faults: []Fault{{Kind: "leader-isolate-from-followers", Target: "leader(t,0)", Nodes: []int32{1}, Start: 5, End: 10}},
		show:   func(n int64) func(*ConfigSummary) { return lost("leader-isolate-from-followers", n) }},
	{id: 3, unsafe: map[string]string{"acks": "1"}, safe: map[string]string{}, faults: kill("leader(t,0)"),
		show: func(n int64) func(*ConfigSummary) { return lost("kill", n) }},
	{id: 4, unsafe: map[string]string{"min.insync.replicas": "1"}, safe: map[string]string{}, faults: kill("followers(t,0)"),
		show: func(n int64) func(*ConfigSummary) { return func(c *ConfigSummary) { c.AckedLeaderOnly = n } }},
	{id: 5, unsafe: map[string]string{"min.insync.replicas": "1"}, safe: map[string]string{}, faults: kill("followers(t,0)"),
		show:     func(n int64) func(*ConfigSummary) { return func(c *ConfigSummary) { c.AckedLeaderOnly = n } },
		exercise: func(c *ConfigSummary) { c.Errors["NOT_ENOUGH_REPLICAS"] = 40 }, unknownMention: "refused"},
	{id: 6, unsafe: map[string]string{"unclean.leader.election.enable": "true"}, safe: map[string]string{}, faults: kill("leader(t,0)"),
		show:     func(n int64) func(*ConfigSummary) { return lost("kill", n) },
		exercise: func(c *ConfigSummary) { c.Impacts = []Impact{{Fault: 1, Unavailable: 12}} }},
	{id: 8, unsafe: map[string]string{"flush.messages": "9223372036854775807"}, safe: map[string]string{"flush.messages": "1"},
		faults: []Fault{{Kind: "lose-unsynced", Target: "all", Nodes: []int32{1, 2, 3}, Start: 5, End: 5}},
		show:   func(n int64) func(*ConfigSummary) { return lost("lose-unsynced", n) }},
	{id: 9, unsafe: map[string]string{"replication.factor": "1", "min.insync.replicas": "1"}, safe: map[string]string{},
		faults: []Fault{{Kind: "lose-unsynced", Target: "leader(t,0)", Nodes: []int32{2}, Start: 5, End: 5}},
		show:   func(n int64) func(*ConfigSummary) { return lost("lose-unsynced", n) }},
	{id: 10, unsafe: map[string]string{"keys": "none"}, safe: map[string]string{"keys": "100 uniform", "enable.idempotence": "true"},
		show: func(n int64) func(*ConfigSummary) { return func(c *ConfigSummary) { c.ReadInversions = n } }},
	{id: 11, unsafe: map[string]string{}, safe: map[string]string{"enable.idempotence": "true"}, faults: kill("leader(t,0)"),
		show: func(n int64) func(*ConfigSummary) {
			return func(c *ConfigSummary) {
				c.Anomalies[checker.Reorder] = n
				c.Attribution = map[string]Attribution{checker.Reorder: {Causes: map[string]int64{checker.CauseRetry: n}}}
			}
		}},
	{id: 12, unsafe: map[string]string{}, safe: map[string]string{"enable.idempotence": "true"},
		faults: []Fault{{Kind: "drop-responses", Target: "leader(t,0)", Start: 5, End: 10}},
		show: func(n int64) func(*ConfigSummary) {
			return func(c *ConfigSummary) {
				c.Anomalies[checker.Duplicate] = n
				c.Attribution = map[string]Attribution{checker.Duplicate: {Faults: map[string]int64{"drop-responses": n}}}
			}
		}},
	{id: 13, unsafe: map[string]string{"transactional": "true", "abort_ratio": "0.2"},
		safe: map[string]string{"transactional": "true", "abort_ratio": "0.2", "isolation.level": "read_committed"},
		show: func(n int64) func(*ConfigSummary) {
			return func(c *ConfigSummary) { c.Anomalies[checker.AbortedRead] = n }
		}},
	{id: 14, unsafe: map[string]string{"commit_mode": "auto"}, safe: map[string]string{},
		faults: []Fault{{Kind: "crash-consumer", Target: "consumer(0)", Start: 5, End: 5}},
		show: func(n int64) func(*ConfigSummary) {
			return func(c *ConfigSummary) {
				c.Anomalies[checker.CommittedUnprocessed] = n
				c.Attribution = map[string]Attribution{checker.CommittedUnprocessed: {Faults: map[string]int64{"crash-consumer": n}}}
			}
		}},
}

// TestCountingRules: for each claim judged by counting its anomaly, a fixture where the
// unsafe side shows it and the safe side does not holds, one where the safe side shows it
// too is refuted, and one where neither shows it is unknown and says what was tried.
func TestCountingRules(t *testing.T) {
	for _, r := range countingRules {
		side := func(name string, params map[string]string, n int64, exercise bool) *ConfigData {
			return claimFixture(name, 1, params, r.faults, func(c *ConfigSummary) {
				r.show(n)(c)
				if exercise && r.exercise != nil {
					r.exercise(c)
				}
			})
		}
		t.Run(fmt.Sprintf("claim %d", r.id), func(t *testing.T) {
			held := judgeOne(t, r.id, []*ConfigData{side("u", r.unsafe, 7, false)}, []*ConfigData{side("s", r.safe, 0, true)})
			if held.Status != ClaimHeld || held.Unsafe.Count != 7 || held.Unsafe.Observed != 1 || held.Safe.Observed != 0 {
				t.Errorf("held fixture: %s: %s (unsafe %+v)", held.Status, held.Measured, held.Unsafe)
			}
			ref := judgeOne(t, r.id, []*ConfigData{side("u", r.unsafe, 7, false)}, []*ConfigData{side("s", r.safe, 2, true)})
			if ref.Status != ClaimRefuted || ref.Safe.Count != 2 {
				t.Errorf("refuted fixture: %s: %s", ref.Status, ref.Measured)
			}
			unk := judgeOne(t, r.id, []*ConfigData{side("u", r.unsafe, 0, false)}, []*ConfigData{side("s", r.safe, 0, true)})
			if unk.Status != ClaimUnknown || !strings.Contains(unk.Tried, "never showed") {
				t.Errorf("unknown fixture: %s: tried %q, measured %s", unk.Status, unk.Tried, unk.Measured)
			}
			if r.exercise != nil {
				untested := judgeOne(t, r.id, []*ConfigData{side("u", r.unsafe, 7, false)}, []*ConfigData{side("s", r.safe, 0, false)})
				if untested.Status != ClaimUnknown || !strings.Contains(untested.Tried, "never put to the test") {
					t.Errorf("safe side never tested: %s: %q", untested.Status, untested.Tried)
				}
			}
		})
	}
}

// TestCountingRulesCoverEveryClaim: every claim of CLAIMS.md has a rule, and every counting
// rule has held, refuted and unknown fixtures above.
func TestCountingRulesCoverEveryClaim(t *testing.T) {
	tested := map[int]bool{7: true, 15: true, 16: true, 17: true}
	for _, r := range countingRules {
		tested[r.id] = true
	}
	for id := 1; id <= 17; id++ {
		if ruleFor(id) == nil {
			t.Errorf("claim %d has no rule", id)
		}
		if !tested[id] {
			t.Errorf("claim %d has no fixtures", id)
		}
	}
}

// TestEvidenceFromTheClaimsMechanismOnly: anomalies another mechanism caused do not count: a
// reorder by log truncation is not a retry reorder (claim 11), a loss away from the claim's
// faults is not the claim's loss (claim 2).
func TestEvidenceFromTheClaimsMechanismOnly(t *testing.T) {
	truncated := claimFixture("u", 1, nil, kill("leader(t,0)"), func(c *ConfigSummary) {
		c.Anomalies[checker.Reorder] = 30
		c.Attribution = map[string]Attribution{checker.Reorder: {Causes: map[string]int64{checker.CauseTruncation: 30}}}
	})
	safe := claimFixture("s", 1, map[string]string{"enable.idempotence": "true"}, kill("leader(t,0)"), nil)
	c := judgeOne(t, 11, []*ConfigData{truncated}, []*ConfigData{safe})
	if c.Status != ClaimUnknown || !strings.Contains(c.Measured, "30 caused by log truncation, not counted") {
		t.Errorf("claim 11 from truncation reorders: %s: %s", c.Status, c.Measured)
	}
	iso := []Fault{{ID: 1, Kind: "leader-isolate-from-followers", Target: "leader(t,0)", Start: 5, End: 10}}
	elsewhere := claimFixture("u", 1, map[string]string{"acks": "1"}, iso, func(c *ConfigSummary) {
		c.Anomalies[checker.Lost] = 9
		c.Attribution = map[string]Attribution{checker.Lost: {Faults: map[string]int64{checker.NoFault: 9}}}
	})
	c = judgeOne(t, 2, []*ConfigData{elsewhere}, []*ConfigData{claimFixture("s", 1, nil, iso, nil)})
	if c.Status != ClaimUnknown || !strings.Contains(c.Measured, "9 more lost away from the claim's faults") {
		t.Errorf("claim 2 from losses away from its fault: %s: %s", c.Status, c.Measured)
	}
}

// TestTrialsCountedPerSide: the unsafe side's anomaly in 2 of 3 trials reads "2 of 3".
func TestTrialsCountedPerSide(t *testing.T) {
	var unsafe, safe []*ConfigData
	for trial, n := range []int64{4, 0, 9} {
		unsafe = append(unsafe, claimFixture("acks=1", trial+1, map[string]string{"acks": "1"}, kill("leader(t,0)"), lost("kill", n)))
		safe = append(safe, claimFixture("acks=all", trial+1, nil, kill("leader(t,0)"), nil))
	}
	c := judgeOne(t, 3, unsafe, safe)
	if c.Status != ClaimHeld || c.Trials != 3 || c.Unsafe.Observed != 2 || c.Unsafe.Trials != 3 || c.Unsafe.Count != 13 ||
		!strings.Contains(c.Measured, "observed in 2 of 3 trials") {
		t.Errorf("%s, %d trials: %+v; %s", c.Status, c.Trials, c.Unsafe, c.Measured)
	}
}

// TestMissingInputs: a side whose configuration lacks what the rule needs leaves the claim
// unknown, naming what is missing; the claim-08 case: a power loss under a kind name the
// rule does not know is no lose-unsynced fault.
func TestMissingInputs(t *testing.T) {
	wrong := []Fault{{Kind: "power-off", Target: "all", Nodes: []int32{1, 2, 3}}}
	c := judgeOne(t, 8, []*ConfigData{claimFixture("u", 1, nil, wrong, lost("power-off", 3))},
		[]*ConfigData{claimFixture("s", 1, map[string]string{"flush.messages": "1"}, wrong, nil)})
	if c.Status != ClaimUnknown || !strings.Contains(c.Tried, "lose-unsynced on every replica") {
		t.Errorf("claim 8 without lose-unsynced: %s: %s", c.Status, c.Measured)
	}
	err := CheckClaims(nil, nil)
	if err != nil {
		t.Errorf("no claims: %v", err)
	}
}

// TestNotExercised: a claim the workload does not declare, or whose sides ran nothing, is not
// exercised.
func TestNotExercised(t *testing.T) {
	cd := claimFixture("a", 1, nil, nil, nil)
	for _, c := range JudgeClaims([]*ConfigData{cd}, nil) {
		if c.Status != ClaimNotExercised {
			t.Errorf("claim %d: %s", c.ID, c.Status)
		}
	}
	info := &rundir.RunInfo{Claims: []rundir.ClaimDecl{{ID: 2, UnsafeConfigs: []string{"x"}, SafeConfigs: []string{"y"}, Pos: "f:1"}}}
	for _, c := range JudgeClaims([]*ConfigData{cd}, info) {
		if c.ID == 2 && c.Status != ClaimNotExercised {
			t.Errorf("claim 2 with no configuration on either side: %s", c.Status)
		}
	}
}

// TestFailures: the exit status fails on a refuted or unknown claim and on a broken
// guarantee, but not on the anomaly an unsafe side is run to show.
func TestFailures(t *testing.T) {
	durable := Guarantee{Name: "acked-writes-durable", Claimed: true, Status: checker.StatusFail, Violations: 5, Forbids: []string{checker.Lost}}
	order := Guarantee{Name: "producer-order", Claimed: true, Status: checker.StatusFail, Violations: 2, Forbids: []string{checker.Reorder}}
	s := &Summary{
		Configs: []ConfigSummary{
			{Name: "u", Config: "u", Anomalies: map[string]int64{checker.Lost: 5}, Guarantees: []Guarantee{durable}},
			{Name: "s", Config: "s", Anomalies: map[string]int64{checker.Reorder: 2}, Guarantees: []Guarantee{order}},
		},
		Claims: []ClaimResult{
			{ID: 3, Status: ClaimHeld, Pos: "f:1", Unsafe: &SideResult{Configs: []string{"u"}}, Safe: &SideResult{Configs: []string{"s"}}},
		},
	}
	f := Failures(s)
	if len(f) != 1 || !strings.Contains(f[0], "s broke producer-order") {
		t.Errorf("failures: %q", f)
	}
	s.Claims[0].Status, s.Claims[0].Tried = ClaimUnknown, "the unsafe side never showed it"
	s.Claims = append(s.Claims, ClaimResult{ID: 12, Status: ClaimRefuted, Measured: "safe showed 3", Pos: "f:2"})
	f = Failures(s)
	if len(f) != 3 || !strings.Contains(f[0], "claim 3 unknown") || !strings.Contains(f[1], "claim 12 refuted") {
		t.Errorf("failures: %q", f)
	}
}

// perf builds a configuration with performance figures: capacity and the publish p50 at
// 2000/s.
func perf(config string, params map[string]string, capacity, p50 float64) *ConfigData {
	params = maps.Clone(params)
	params["performance"] = "true"
	return claimFixture(config, 1, params, nil, func(c *ConfigSummary) {
		c.Performance = &Performance{Capacity: capacity, Points: []LoadPoint{{Name: "2000/s", Offered: 2000, Achieved: 2000, Publish: &Latency{P50: p50}}}}
	})
}

func judgeAll(t *testing.T, id int, cds ...*ConfigData) ClaimResult {
	t.Helper()
	for _, c := range JudgeClaims(cds, &rundir.RunInfo{Claims: []rundir.ClaimDecl{{ID: id, All: true, Pos: "f.yaml:2"}}}) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("claim %d not answered", id)
	return ClaimResult{}
}

// TestClaimSevenPairs: claim 7 compares configurations differing in acks, batch size or
// linger alone, at capacity and at a common offered load, pair by pair; a figure measured
// while the cluster met errors (a failover) is left out.
func TestClaimSevenPairs(t *testing.T) {
	a0 := perf("acks=0", map[string]string{"acks": "0"}, 90000, 0.4)
	a1 := perf("acks=1", map[string]string{"acks": "1"}, 70000, 1.2)
	aall := perf("acks=all", map[string]string{"acks": "all"}, 50000, 2.5)
	big := perf("acks=all,batch", map[string]string{"acks": "all", "batch_size": "256KiB"}, 65000, 2.6)
	linger := perf("acks=all,linger", map[string]string{"acks": "all", "linger": "20ms"}, 52000, 14)
	c := judgeAll(t, 7, a0, a1, aall, big, linger)
	if c.Status != ClaimHeld || len(c.Pairs) != 5 {
		t.Fatalf("%s with %d pairs: %s", c.Status, len(c.Pairs), c.Measured)
	}
	want := map[string]string{"acks 0 → 1": "held", "acks 0 → all": "held", "acks 1 → all": "held", "batch_size 16KiB → 256KiB": "held", "linger 5ms → 20ms": "held"}
	for _, p := range c.Pairs {
		if want[p.Setting] != p.Status {
			t.Errorf("pair %s: %s (%s)", p.Setting, p.Status, p.Measured)
		}
	}
	faster := perf("acks=all", map[string]string{"acks": "all"}, 95000, 2.5)
	if c := judgeAll(t, 7, a1, faster); c.Status != ClaimRefuted || !strings.Contains(c.Measured, "capacity 70000 vs 95000") {
		t.Errorf("acks=all faster than acks=1: %s: %s", c.Status, c.Measured)
	}
	same := perf("acks=all", map[string]string{"acks": "all"}, 64000, 1.25)
	if c := judgeAll(t, 7, a1, same); c.Status != ClaimUnknown {
		t.Errorf("within noise: %s: %s", c.Status, c.Measured)
	}
	failover := perf("acks=all", map[string]string{"acks": "all"}, 95000, 0.2)
	failover.Summary.Performance.CapacityErrors = map[string]int64{"NOT_LEADER_OR_FOLLOWER": 40}
	failover.Summary.Performance.Points[0].Errors = map[string]int64{"NOT_LEADER_OR_FOLLOWER": 3}
	if c := judgeAll(t, 7, a1, failover); c.Status != ClaimUnknown || !strings.Contains(c.Measured, "2 performance figures met errors") {
		t.Errorf("a failover's figures judged: %s: %s", c.Status, c.Measured)
	}
}

// TestClaimFifteen: members beyond the partition count are idle and read nothing; a
// partition read by two members of one generation refutes the claim.
func TestClaimFifteen(t *testing.T) {
	group := func(idle int, shared, idleReads int64) []checker.GroupStats {
		return []checker.GroupStats{{ID: "g", Members: 6, Shared: shared, IdleReads: idleReads,
			Generations: []checker.Generation{{Generation: 1, Members: 6, Idle: idle, Partitions: 4, Pause: -1}}}}
	}
	cfg := func(name, consumers string, g []checker.GroupStats) *ConfigData {
		return claimFixture(name, 1, map[string]string{"consumers": consumers}, nil, func(c *ConfigSummary) { c.Groups = g })
	}
	// A generation that covers only some partitions (a cooperative rebalance's first step)
	// has a member with none without it being idle.
	partial := func() []checker.GroupStats {
		g := group(0, 0, 0)
		g[0].Generations = append(g[0].Generations, checker.Generation{Generation: 2, Members: 4, Idle: 1, Partitions: 3, Pause: 0})
		return g
	}
	if c := judgeOne(t, 15, []*ConfigData{cfg("c6", "6", group(2, 0, 0))}, []*ConfigData{cfg("c4", "4", partial())}); c.Status != ClaimHeld {
		t.Errorf("a cooperative rebalance's partial generation counted idle: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 15, []*ConfigData{cfg("c6", "6", group(2, 0, 0))}, []*ConfigData{cfg("c4", "4", group(0, 0, 0))}); c.Status != ClaimHeld ||
		!strings.Contains(c.Measured, "up to 2 idle members of 6") {
		t.Errorf("held: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 15, []*ConfigData{cfg("c6", "6", group(2, 1, 0))}, []*ConfigData{cfg("c4", "4", group(0, 0, 0))}); c.Status != ClaimRefuted {
		t.Errorf("shared partition: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 15, []*ConfigData{cfg("c6", "6", group(0, 0, 0))}, []*ConfigData{cfg("c4", "4", group(0, 0, 0))}); c.Status != ClaimUnknown {
		t.Errorf("no idle member: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 15, []*ConfigData{cfg("c6", "6", nil)}, []*ConfigData{cfg("c4", "4", nil)}); c.Status != ClaimUnknown ||
		!strings.Contains(c.Tried, "no group generations") {
		t.Errorf("no generations recorded: %s: %s", c.Status, c.Tried)
	}
}

// TestClaimSixteen: a quick restart rebalances dynamic members and not static ones; a stall
// past max.poll.interval.ms must rebalance both.
func TestClaimSixteen(t *testing.T) {
	faults := []Fault{{ID: 1, Kind: "restart-consumer", Target: "consumer(0)", Start: 10, End: 12}, {ID: 2, Kind: "stall-consumer", Target: "consumer(1)", Start: 20, End: 30}}
	gens := func(restart, stall int) []checker.GroupStats {
		g := checker.GroupStats{ID: "g", Generations: []checker.Generation{{Generation: 1, Pause: -1}}}
		for i := 0; i < restart; i++ {
			g.Generations = append(g.Generations, checker.Generation{Generation: int32(len(g.Generations) + 1), Pause: 2e9, Faults: []string{"restart-consumer"}})
		}
		for i := 0; i < stall; i++ {
			g.Generations = append(g.Generations, checker.Generation{Generation: int32(len(g.Generations) + 1), Pause: 1e9, Faults: []string{"stall-consumer"}})
		}
		g.Rebalances = len(g.Generations) - 1
		return []checker.GroupStats{g}
	}
	cfg := func(name, static string, g []checker.GroupStats) *ConfigData {
		return claimFixture(name, 1, map[string]string{"static_membership": static}, faults, func(c *ConfigSummary) { c.Groups = g })
	}
	if c := judgeOne(t, 16, []*ConfigData{cfg("dyn", "false", gens(2, 1))}, []*ConfigData{cfg("static", "true", gens(0, 2))}); c.Status != ClaimHeld ||
		!strings.Contains(c.Measured, "2 after the quick restart") || !strings.Contains(c.Measured, "consumption paused 2.0s") {
		t.Errorf("held: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 16, []*ConfigData{cfg("dyn", "false", gens(2, 1))}, []*ConfigData{cfg("static", "true", gens(1, 1))}); c.Status != ClaimRefuted {
		t.Errorf("static member rebalanced on a quick restart: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 16, []*ConfigData{cfg("dyn", "false", gens(2, 0))}, []*ConfigData{cfg("static", "true", gens(0, 1))}); c.Status != ClaimRefuted ||
		!strings.Contains(c.Measured, "caused no rebalance in dyn") {
		t.Errorf("no expulsion: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 16, []*ConfigData{cfg("dyn", "false", gens(0, 1))}, []*ConfigData{cfg("static", "true", gens(0, 1))}); c.Status != ClaimUnknown {
		t.Errorf("no rebalance on the quick restart: %s: %s", c.Status, c.Measured)
	}
}

// TestClaimSeventeen: the batch and async modes must drain the backlog the group mode builds
// faster, by more than the margin.
func TestClaimSeventeen(t *testing.T) {
	cfg := func(mode string, atStop int64, drain float64) *ConfigData {
		return claimFixture(mode, 1, map[string]string{"consumer_mode": mode}, nil, func(c *ConfigSummary) {
			c.Backlog = &Backlog{Stop: 20, AtStop: atStop, MaxLag: atStop, Drain: drain, Until: 50}
		})
	}
	if c := judgeOne(t, 17, []*ConfigData{cfg("group", 9000, -1)}, []*ConfigData{cfg("batch", 100, 1), cfg("async", 0, 0)}); c.Status != ClaimHeld ||
		!strings.Contains(c.Measured, "unsafe u 30.0s") {
		t.Errorf("held: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 17, []*ConfigData{cfg("group", 9000, 12)}, []*ConfigData{cfg("batch", 9000, 13)}); c.Status != ClaimRefuted {
		t.Errorf("batch slower: %s: %s", c.Status, c.Measured)
	}
	if c := judgeOne(t, 17, []*ConfigData{cfg("group", 0, 0)}, []*ConfigData{cfg("batch", 0, 0)}); c.Status != ClaimUnknown || !strings.Contains(c.Tried, "no backlog") {
		t.Errorf("no backlog: %s: %s", c.Status, c.Tried)
	}
}

// TestClaimsIndex: the claims index lists each declared claim of each run with its sides,
// trials and wall time, links it to its run's report, and lists a run that failed.
func TestClaimsIndex(t *testing.T) {
	held := ClaimResult{ID: 2, Status: ClaimHeld, Pos: "f:3", Trials: 1, Measured: "lost 12",
		Unsafe: &SideResult{Match: "acks=1", Count: 12, Observed: 1, Trials: 1}, Safe: &SideResult{Match: "acks=all", Trials: 1}}
	runs := []ClaimRun{
		{File: "workloads/claim-02.yaml", Dir: "claim-02", Wall: 61 * time.Second, Summary: &Summary{Claims: []ClaimResult{held, {ID: 3, Status: ClaimNotExercised}}}},
		{File: "workloads/claim-08.yaml", Dir: "claim-08", Wall: 2 * time.Second, Err: errors.New("run: disk full")},
	}
	rows := ClaimRows(runs)
	if len(rows) != 2 || rows[0].Claim.ID != 2 || rows[1].Claim.Status != "error" {
		t.Fatalf("rows: %+v", rows)
	}
	var b strings.Builder
	if err := WriteClaimsIndexTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"acks=1: 12 in 1 of 1 trials", "1m1s", "claim-02.yaml", "error"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	path := filepath.Join(t.TempDir(), "index.html")
	if err := WriteClaimsIndex(path, rows, 2, 63*time.Second); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(path)
	for _, want := range []string{`href="claim-02/report.html#claim-2"`, "run: disk full", "total wall time 1m3s"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index lacks %q", want)
		}
	}
}

func TestDecidedWaitsForEveryTrialOfAMeasuredClaim(t *testing.T) {
	held := func(id int) ClaimResult { return ClaimResult{ID: id, Status: ClaimHeld} }
	cases := []struct {
		name       string
		claims     []ClaimResult
		trials, of int
		want       bool
	}{
		{"an anomaly claim held after one trial", []ClaimResult{held(2)}, 1, 3, true},
		{"an unknown claim", []ClaimResult{held(2), {ID: 3, Status: ClaimUnknown}}, 1, 3, false},
		{"claim 7 after one trial of two", []ClaimResult{held(7)}, 1, 2, false},
		{"claim 7 refuted after one trial of two", []ClaimResult{{ID: 7, Status: ClaimRefuted}}, 1, 2, false},
		{"claim 7 after both trials", []ClaimResult{held(7)}, 2, 2, true},
		{"claim 17 after one trial of three", []ClaimResult{held(17)}, 1, 3, false},
		{"claim 7 not declared", []ClaimResult{{ID: 7, Status: ClaimNotExercised}, held(1)}, 1, 2, true},
	}
	for _, c := range cases {
		if got := Decided(c.claims, c.trials, c.of); got != c.want {
			t.Errorf("%s: Decided = %v, want %v", c.name, got, c.want)
		}
	}
}
