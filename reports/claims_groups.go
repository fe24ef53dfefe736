package reports

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// groupMode is a consumer mode whose consumers are group members.
func groupMode(in *ClaimInput) string {
	m := param(in, "consumer_mode")
	return want(m == "group" || m == "batch" || m == "async", "consumers in a group (consumer.mode group, batch or async)")
}

// knownGenerations reports whether c's history names its groups' generations (a driver
// that does not report them leaves Generations empty).
func knownGenerations(c *ConfigSummary) bool {
	for _, g := range c.Groups {
		if len(g.Generations) > 0 {
			return true
		}
	}
	return false
}

var rule15 = rule{id: 15, text: "Within a group each partition is read by exactly one consumer; consumers beyond the partition count stay idle.",
	anomaly: "idle members",
	unsafe: both(groupMode, func(in *ClaimInput) string {
		return want(intParam(in, "consumers") > intParam(in, "partitions"), "more consumers per group than partitions")
	}),
	safe: both(groupMode, func(in *ClaimInput) string {
		return want(intParam(in, "consumers") <= intParam(in, "partitions"), "no more consumers per group than partitions")
	}),
	judge: judgeExclusive}

// judgeExclusive judges claim 15: in every generation of every group, each partition was
// assigned to and read by one member; the unsafe side (more members than partitions) had
// idle members that read nothing, the safe side none.
func judgeExclusive(r *rule, x *experiment) ClaimResult {
	res := ClaimResult{}
	broken := int64(0)
	known := true
	side := func(c *ConfigSummary) (int64, string) {
		known = known && knownGenerations(c)
		idle, gens := 0, 0
		var shared, idleReads int64
		for _, g := range c.Groups {
			shared += g.Shared
			idleReads += g.IdleReads
			for _, gen := range g.Generations {
				gens++
				// Idle members count once the generation's assignment covers every
				// partition: a cooperative rebalance first revokes, and the member that is
				// to get a revoked partition has none for one generation.
				if gen.Partitions >= intParam(inputOf(c), "partitions") {
					idle = max(idle, gen.Idle)
				}
			}
		}
		broken += shared + idleReads
		return int64(idle), fmt.Sprintf("%s: %d generations, up to %d idle members of %s; %d partitions shared in a generation, %d records read by idle members",
			c.Name, gens, idle, c.Params["consumers"], shared, idleReads)
	}
	res.Unsafe = walkSide(x.unsafe, x.decl.Unsafe, x.trials, side)
	res.Safe = walkSide(x.safe, x.decl.Safe, x.trials, side)
	settleGroups(&res, known, broken > 0, fmt.Sprintf("%s: no generation of the unsafe side had an idle member", trialsText(len(x.trials))))
	return res
}

// settleGroups sets a group claim's status and evidence from its sides: unknown when the
// driver recorded no generations, refuted when the group broke the claim or the safe side
// showed the anomaly, held when the unsafe side did, else unknown (never says what ran).
func settleGroups(res *ClaimResult, known, broken bool, never string) {
	switch {
	case !known:
		res.Status = ClaimUnknown
		res.Tried = "the driver records no group generations"
	case broken || res.Safe.Observed > 0:
		res.Status = ClaimRefuted
	case res.Unsafe.Observed > 0:
		res.Status = ClaimHeld
	default:
		res.Status, res.Tried = ClaimUnknown, never
	}
	res.Measured = fmt.Sprintf("unsafe %s: %s; safe %s: %s", res.Unsafe.Match, strings.Join(res.Unsafe.Evidence, "; "),
		res.Safe.Match, strings.Join(res.Safe.Evidence, "; "))
}

var rule16 = rule{id: 16, text: "Rebalances pause consumption; a consumer that exceeds max.poll.interval.ms is expelled and triggers a rebalance; static membership avoids rebalances on quick restarts.",
	anomaly: "rebalances on a quick restart",
	unsafe: both(groupMode, func(in *ClaimInput) string {
		return want(param(in, "static_membership") == "false", "consumer.staticMembership false")
	}),
	safe: both(groupMode, func(in *ClaimInput) string {
		return want(param(in, "static_membership") == "true", "consumer.staticMembership true")
	}),
	faults: func(in *ClaimInput) string {
		session, _ := time.ParseDuration(param(in, "session_timeout"))
		return hasFault("restart-consumer shorter than consumer.sessionTimeout (a quick restart)", func(f FaultSpec) bool {
			return f.For > 0 && f.For < session
		}, "restart-consumer")(in)
	},
	judge: judgeRebalances}

// stallsPastPollInterval reports whether c stalled a consumer for longer than its
// max.poll.interval.ms.
func stallsPastPollInterval(c *ConfigSummary) bool {
	mpi, _ := time.ParseDuration(c.Params["max_poll_interval"])
	for _, f := range c.Faults {
		if f.Kind == "stall-consumer" && time.Duration((f.End-f.Start)*float64(time.Second)) > mpi {
			return true
		}
	}
	return false
}

// judgeRebalances judges claim 16: a quick restart rebalanced the unsafe side (dynamic
// members), never the safe side (static members); a stall past max.poll.interval.ms, where
// one ran, rebalanced both; and each rebalance's pause is reported.
func judgeRebalances(r *rule, x *experiment) ClaimResult {
	res := ClaimResult{}
	known, notExpelled := true, []string{}
	side := func(c *ConfigSummary) (int64, string) {
		known = known && knownGenerations(c)
		restarts, stalls, total := 0, 0, 0
		var pauses []string
		for _, g := range c.Groups {
			total += g.Rebalances
			for i, gen := range g.Generations {
				if i == 0 {
					continue
				}
				if slices.Contains(gen.Faults, "restart-consumer") {
					restarts++
				}
				if slices.Contains(gen.Faults, "stall-consumer") {
					stalls++
				}
				if gen.Pause >= 0 {
					pauses = append(pauses, fmt.Sprintf("%.1fs", float64(gen.Pause)/1e9))
				}
			}
		}
		if stallsPastPollInterval(c) && stalls == 0 {
			notExpelled = append(notExpelled, c.Name)
		}
		line := fmt.Sprintf("%s: %d rebalances, %d after the quick restart, %d after the stall", c.Name, total, restarts, stalls)
		if len(pauses) > 0 {
			line += ", consumption paused " + strings.Join(pauses, ", ")
		}
		return int64(restarts), line
	}
	res.Unsafe = walkSide(x.unsafe, x.decl.Unsafe, x.trials, side)
	res.Safe = walkSide(x.safe, x.decl.Safe, x.trials, side)
	settleGroups(&res, known, len(notExpelled) > 0, fmt.Sprintf("%s: the quick restart never rebalanced the unsafe side", trialsText(len(x.trials))))
	if len(notExpelled) > 0 {
		res.Measured += "; a stall past max.poll.interval.ms caused no rebalance in " + strings.Join(notExpelled, ", ")
	}
	return res
}
