package reports

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kchaos/kchaos/checker"
)

// claimRule answers one claim of CLAIMS.md from the configurations of a run.
type claimRule struct {
	id   int
	text string
	// judge returns the status, what was measured and the configurations that exercised the
	// claim; no configurations means not exercised.
	judge func(cs []*ConfigSummary) (status, measured string, configs []string)
}

func p(c *ConfigSummary, k string) string { return c.Params[k] }

// pi returns a numeric parameter, 0 when absent.
func pi(c *ConfigSummary, k string) int {
	n, _ := strconv.Atoi(c.Params[k])
	return n
}

func acksAll(c *ConfigSummary) bool { return p(c, "acks") == "all" || p(c, "acks") == "-1" }

// killingFaults reports whether a config ran a fault that kills, pauses or isolates a broker.
func killingFaults(c *ConfigSummary) bool {
	for _, f := range c.Faults {
		k := strings.ToLower(f.Kind)
		if k != "delay" && k != "latency" && k != "jitter" && k != "bandwidth" && k != "slow-disk" {
			return true
		}
	}
	return false
}

func fsyncFault(c *ConfigSummary) *Fault {
	for i, f := range c.Faults {
		k := strings.ToLower(f.Kind)
		if strings.Contains(k, "fsync") || strings.Contains(k, "power") {
			return &c.Faults[i]
		}
	}
	return nil
}

func guarantee(c *ConfigSummary, name string) *Guarantee {
	for i := range c.Guarantees {
		if c.Guarantees[i].Name == name {
			return &c.Guarantees[i]
		}
	}
	return nil
}

// selectConfigs returns the configs matching keep.
func selectConfigs(cs []*ConfigSummary, keep func(*ConfigSummary) bool) []*ConfigSummary {
	var out []*ConfigSummary
	for _, c := range cs {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

func names(cs []*ConfigSummary) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// existence judges a "can happen" claim: held when count > 0 in some exercising config,
// else unknown (absence in one run does not refute "can").
func existence(cs []*ConfigSummary, keep func(*ConfigSummary) bool, count func(*ConfigSummary) int64, what string) (string, string, []string) {
	sel := selectConfigs(cs, keep)
	if len(sel) == 0 {
		return ClaimNotExercised, "", nil
	}
	var parts []string
	total := int64(0)
	for _, c := range sel {
		n := count(c)
		total += n
		parts = append(parts, fmt.Sprintf("%s: %d %s", c.Name, n, what))
	}
	if total > 0 {
		return ClaimHeld, strings.Join(parts, "; "), names(sel)
	}
	return ClaimUnknown, strings.Join(parts, "; ") + " (not observed in this run; one run without it does not refute a claim that it can happen)", names(sel)
}

// guaranteeHolds judges a "never happens" claim by the checker's verdict on a guarantee.
func guaranteeHolds(cs []*ConfigSummary, keep func(*ConfigSummary) bool, name string) (string, string, []string) {
	sel := selectConfigs(cs, func(c *ConfigSummary) bool {
		g := guarantee(c, name)
		return g != nil && g.Claimed && keep(c)
	})
	if len(sel) == 0 {
		return ClaimNotExercised, "", nil
	}
	status := ClaimHeld
	var parts []string
	for _, c := range sel {
		g := guarantee(c, name)
		s := fmt.Sprintf("%s: %s, %d violations", c.Name, g.Status, g.Violations)
		if g.Note != "" {
			s += " (" + g.Note + ")"
		}
		parts = append(parts, s)
		switch g.Status {
		case checker.StatusFail:
			status = ClaimDidNotHold
		case checker.StatusUnknown:
			if status == ClaimHeld {
				status = ClaimUnknown
			}
		}
	}
	return status, fmt.Sprintf("checker guarantee %s — %s", name, strings.Join(parts, "; ")), names(sel)
}

// claimRules are the claims of CLAIMS.md this report can answer, by number.
var claimRules = []claimRule{
	{1, "acks=0 can lose messages even without faults: the producer never learns of a failure.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return existence(cs, func(c *ConfigSummary) bool { return p(c, "acks") == "0" },
				func(c *ConfigSummary) int64 { return max(0, c.Counts.Sent-c.Counts.Drained) }, "sent records never read back")
		}},
	{2, "acks=1 loses acknowledged messages when the leader dies before a follower copied them.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return existence(cs, func(c *ConfigSummary) bool { return p(c, "acks") == "1" && killingFaults(c) },
				func(c *ConfigSummary) int64 { return c.Anomalies[checker.Lost] }, "acknowledged records lost")
		}},
	{3, "acks=all with min.insync.replicas ≥ 2 and RF ≥ 3 loses no acknowledged message when one broker dies or is cut off.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return guaranteeHolds(cs, func(c *ConfigSummary) bool { return acksAll(c) && killingFaults(c) }, "acked-writes-durable")
		}},
	{4, "acks=all with min.insync.replicas=1 degrades to acks=1 once the ISR shrinks to the leader alone.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return existence(cs, func(c *ConfigSummary) bool {
				return acksAll(c) && pi(c, "min.insync.replicas") <= 1 && killingFaults(c)
			}, func(c *ConfigSummary) int64 { return c.AckedLeaderOnly + c.Anomalies[checker.Lost] }, "writes acknowledged by the leader alone or lost")
		}},
	{5, "With min.insync.replicas=2 and one in-sync replica left, acks=all writes are refused (NOT_ENOUGH_REPLICAS), never accepted unsafely.",
		func(cs []*ConfigSummary) (string, string, []string) {
			st, m, c := guaranteeHolds(cs, func(c *ConfigSummary) bool { return killingFaults(c) && pi(c, "min.insync.replicas") >= 2 }, "min-insync-enforced")
			if st != ClaimNotExercised {
				var refused int64
				for _, n := range c {
					for _, x := range cs {
						if x.Name == n {
							refused += x.Errors["NOT_ENOUGH_REPLICAS"] + x.Errors["NOT_ENOUGH_REPLICAS_AFTER_APPEND"]
						}
					}
				}
				m += fmt.Sprintf("; %d writes refused with NOT_ENOUGH_REPLICAS(_AFTER_APPEND)", refused)
			}
			return st, m, c
		}},
	{6, "Unclean leader election trades consistency for availability: with it on, data is lost.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return existence(cs, func(c *ConfigSummary) bool {
				return p(c, "unclean.leader.election.enable") == "true" && killingFaults(c)
			},
				func(c *ConfigSummary) int64 { return c.Anomalies[checker.Lost] }, "acknowledged records lost")
		}},
	{7, "Throughput falls and latency rises from acks=0 to acks=1 to acks=all.", judgeAcksOrder},
	{8, "Kafka acknowledges from the page cache: losing un-fsynced writes on every replica loses acknowledged messages unless flush.messages=1.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return existence(cs, func(c *ConfigSummary) bool {
				f := fsyncFault(c)
				return f != nil && (strings.Contains(f.Target, "all") || len(f.Nodes) > 1) && p(c, "flush.messages") != "1"
			}, func(c *ConfigSummary) int64 { return c.Anomalies[checker.Lost] }, "acknowledged records lost")
		}},
	{9, "Replication, not fsync, protects data: one machine losing its un-fsynced writes loses nothing acknowledged with acks=all.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return guaranteeHolds(cs, func(c *ConfigSummary) bool { f := fsyncFault(c); return f != nil && len(f.Nodes) == 1 && acksAll(c) }, "acked-writes-durable")
		}},
	{10, "Order is kept within a partition: records with the same key keep their order.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return guaranteeHolds(cs, func(*ConfigSummary) bool { return true }, "producer-order")
		}},
	{11, "Retries can reorder messages unless idempotence is on or max.in.flight=1.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return existence(cs, func(c *ConfigSummary) bool {
				return p(c, "enable.idempotence") == "false" && pi(c, "max.in.flight") > 1 && p(c, "acks") != "0" && killingFaults(c)
			}, func(c *ConfigSummary) int64 {
				return c.Anomalies[checker.Reorder] + c.Anomalies[checker.NonmonotonicSend]
			}, "reordered sends")
		}},
	{12, "Idempotence removes the duplicates producer retries create.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return guaranteeHolds(cs, killingFaults, "no-duplicates")
		}},
	{13, "Transactions make consume-transform-produce exactly-once; read_committed consumers never see aborted data.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return guaranteeHolds(cs, func(c *ConfigSummary) bool { return p(c, "transactional") == "true" }, "read-committed")
		}},
	{14, "Auto-commit can lose messages when a consumer crashes; commit-after-processing gives at-least-once.",
		func(cs []*ConfigSummary) (string, string, []string) {
			return guaranteeHolds(cs, func(c *ConfigSummary) bool { return len(c.Faults) > 0 }, "at-least-once-processing")
		}},
}

// judgeAcksOrder compares fault-free configurations by acks (averaging over the other
// parameters). Throughput is compared only when some configuration ran unthrottled
// (producer_rate 0): at a fixed target rate every acks setting keeps up and throughput says
// nothing. A stronger acks setting contradicts the claim when it is more than 5% faster, or
// when its publish p50 is lower by more than 10% and 0.5 ms (less is noise).
func judgeAcksOrder(cs []*ConfigSummary) (string, string, []string) {
	type agg struct {
		rate, p50 float64
		n         int
		cfgs      []string
	}
	by := map[string]*agg{}
	throttled := true
	for _, c := range cs {
		if len(c.Faults) > 0 || c.PublishLatency == nil {
			continue
		}
		if r, err := strconv.ParseFloat(p(c, "producer_rate"), 64); err == nil && r == 0 {
			throttled = false
		}
		a := p(c, "acks")
		if a == "-1" {
			a = "all"
		}
		if by[a] == nil {
			by[a] = &agg{}
		}
		by[a].rate += c.Throughput.MsgsPerSec
		by[a].p50 += c.PublishLatency.P50
		by[a].n++
		by[a].cfgs = append(by[a].cfgs, c.Name)
	}
	var order []string
	for _, a := range []string{"0", "1", "all"} {
		if by[a] != nil {
			order = append(order, a)
		}
	}
	if len(order) < 2 {
		return ClaimNotExercised, "", nil
	}
	status := ClaimHeld
	var parts, cfgs, why []string
	prevRate, prevP50 := 0.0, 0.0
	for i, a := range order {
		g := by[a]
		rate, p50 := g.rate/float64(g.n), g.p50/float64(g.n)
		parts = append(parts, fmt.Sprintf("acks=%s: %.0f msgs/s, publish p50 %.2f ms (mean of %d configs)", a, rate, p50, g.n))
		cfgs = append(cfgs, g.cfgs...)
		if i > 0 {
			if !throttled && rate > prevRate*1.05 {
				status = ClaimDidNotHold
				why = append(why, fmt.Sprintf("acks=%s was faster than acks=%s", a, order[i-1]))
			}
			if p50 < prevP50-max(0.1*prevP50, 0.5) {
				status = ClaimDidNotHold
				why = append(why, fmt.Sprintf("acks=%s had a lower p50 than acks=%s", a, order[i-1]))
			}
		}
		prevRate, prevP50 = rate, p50
	}
	sort.Strings(cfgs)
	m := strings.Join(parts, "; ")
	if throttled {
		m += "; every config ran at a fixed target rate, so only latency is compared"
	}
	if len(why) > 0 {
		m += " (" + strings.Join(why, "; ") + ")"
	}
	return status, m, cfgs
}

// unanswered lists the claims no rule answers yet, with why.
var unanswered = map[int]string{
	15: "Within a group each partition is read by exactly one consumer; consumers beyond the partition count stay idle.",
	16: "Rebalances pause consumption; static membership avoids rebalances on quick restarts.",
	17: "A slow consumer builds lag; batched and asynchronous processing drain a backlog faster.",
}

// JudgeClaims answers every claim of CLAIMS.md from the configurations' summaries.
func JudgeClaims(cds []*ConfigData) []ClaimResult {
	cs := make([]*ConfigSummary, len(cds))
	for i, cd := range cds {
		cs[i] = cd.Summary
	}
	var out []ClaimResult
	for _, r := range claimRules {
		st, m, cfgs := r.judge(cs)
		if st == ClaimNotExercised {
			m = "no configuration of this run exercised it"
		}
		out = append(out, ClaimResult{ID: r.id, Text: r.text, Status: st, Measured: m, Configs: cfgs})
	}
	for _, id := range []int{15, 16, 17} {
		out = append(out, ClaimResult{ID: id, Text: unanswered[id], Status: ClaimNotExercised,
			Measured: "the checker has no measurement for this claim yet"})
	}
	return out
}
