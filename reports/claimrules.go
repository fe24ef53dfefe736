package reports

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kchaos/kchaos/checker"
)

// Fault kinds the rules look for, by what they do (chaos/fault.go).
var (
	// brokerDown kinds take a broker away (and most bring it back).
	brokerDown = []string{"kill", "stop", "pause", "restart", "lose-unsynced"}
	// cuts are the network kinds that separate brokers.
	cuts = []string{"isolate", "partition", "partition-halves", "majorities-ring", "bridge", "leader-isolate-from-followers"}
	// lostAcks are the kinds after which a producer may not hear of a write that happened.
	lostAcks = slices.Concat(brokerDown, cuts, []string{"drop-responses"})
	// slowdowns delay requests past their timeouts without taking a broker away.
	slowdowns = []string{"latency", "loss", "bandwidth", "disk-slow"}
	// consumerCrashes are the kinds that end a consumer without a clean shutdown.
	consumerCrashes = []string{"crash-consumer", "restart-consumer"}
)

func param(in *ClaimInput, k string) string { return in.Params[k] }

func intParam(in *ClaimInput, k string) int {
	n, _ := strconv.Atoi(in.Params[k])
	return n
}

func isAcksAll(in *ClaimInput) bool { a := param(in, "acks"); return a == "all" || a == "-1" }

// want returns what when ok is false.
func want(ok bool, what string) string {
	if ok {
		return ""
	}
	return what
}

// both joins the checks; every one must pass.
func both(fs ...func(*ClaimInput) string) func(*ClaimInput) string {
	return func(in *ClaimInput) string {
		var out []string
		for _, f := range fs {
			if p := f(in); p != "" {
				out = append(out, p)
			}
		}
		return strings.Join(out, ", ")
	}
}

func acks(values ...string) func(*ClaimInput) string {
	return func(in *ClaimInput) string {
		a := param(in, "acks")
		if a == "-1" {
			a = "all"
		}
		return want(slices.Contains(values, a), "acks="+strings.Join(values, " or acks="))
	}
}

func minRF(n int) func(*ClaimInput) string {
	return func(in *ClaimInput) string {
		return want(intParam(in, "replication.factor") >= n, fmt.Sprintf("replicationFactor of at least %d", n))
	}
}

// durableSide is the safe side of the durability claims: acks=all, RF ≥ 3, min.insync ≥ 2.
func durableSide(in *ClaimInput) string {
	return both(acks("all"), minRF(3), func(in *ClaimInput) string {
		return want(intParam(in, "min.insync.replicas") >= 2, "topicConfig.min.insync.replicas of at least 2")
	})(in)
}

// hasFault returns a check that some fault of the configuration is of one of kinds and
// passes ok (nil: any).
func hasFault(what string, ok func(FaultSpec) bool, kinds ...string) func(*ClaimInput) string {
	return func(in *ClaimInput) string {
		for _, f := range in.Faults {
			if slices.Contains(kinds, f.Kind) && (ok == nil || ok(f)) {
				return ""
			}
		}
		return "a fault " + what
	}
}

// leaderCut is a fault that separates a partition leader from its followers.
func leaderCut(f FaultSpec) bool {
	return f.Kind == "leader-isolate-from-followers" || strings.HasPrefix(f.Target, "leader(")
}

// oneBroker is a fault that hits a single broker.
func oneBroker(f FaultSpec) bool {
	if f.Nodes > 0 {
		return f.Nodes == 1
	}
	t := f.Target
	return t != "all" && t != "majority" && !strings.HasPrefix(t, "followers(") && t != ""
}

// attributed counts c's instances of an anomaly whose fault windows include one of kinds;
// out are those of other (or no) faults. A summary without attribution counts all as in.
func attributed(c *ConfigSummary, anomaly string, kinds []string) (in, out int64) {
	a, ok := c.Attribution[anomaly]
	if !ok || a.Faults == nil {
		return c.Anomalies[anomaly], 0
	}
	for key, n := range a.Faults {
		hit := false
		for _, k := range strings.Split(key, "+") {
			hit = hit || slices.Contains(kinds, k)
		}
		if hit {
			in += n
		} else {
			out += n
		}
	}
	return in, out
}

// caused counts c's instances of an anomaly the checker put down to cause.
func caused(c *ConfigSummary, anomaly, cause string) int64 {
	if a, ok := c.Attribution[anomaly]; ok {
		return a.Causes[cause]
	}
	return 0
}

// lostBy counts acknowledged records lost after faults of kinds: never read, or read and
// then gone from the log (checker.Lost and checker.LostAfterRead).
func lostBy(kinds []string) func(c *ConfigSummary) (int64, string) {
	return func(c *ConfigSummary) (int64, string) {
		in, out := attributed(c, checker.Lost, kinds)
		in2, out2 := attributed(c, checker.LostAfterRead, kinds)
		in, out = in+in2, out+out2
		note := fmt.Sprintf("of %d acknowledged", c.Counts.Acked)
		if out > 0 {
			note += fmt.Sprintf("; %d more lost away from the claim's faults, not counted", out)
		}
		return in, note
	}
}

func refusals(c *ConfigSummary) int64 {
	return c.Errors["NOT_ENOUGH_REPLICAS"] + c.Errors["NOT_ENOUGH_REPLICAS_AFTER_APPEND"]
}

// claimRules are the rules of CLAIMS.md's claims, by number (7, 15, 16 and 17 judge in
// claims_cost.go and claims_groups.go).
var claimRules = []rule{
	{id: 1, text: "acks=0 can lose messages even with no faults: the producer never learns of a failure.",
		anomaly: "records lost without the producer learning of it",
		unsafe:  acks("0"), safe: acks("1", "all"),
		count: func(c *ConfigSummary) (int64, string) {
			if c.Params["acks"] == "0" {
				return c.UnacknowledgedUnread, fmt.Sprintf("of %d sent, never read and never reported failed", c.Counts.Sent)
			}
			return c.Anomalies[checker.Lost] + c.Anomalies[checker.LostAfterRead], fmt.Sprintf("acknowledged and lost, of %d acknowledged", c.Counts.Acked)
		}},
	{id: 2, text: "acks=1 loses acknowledged messages when the leader dies before a follower copied them.",
		anomaly: "acknowledged records lost",
		unsafe:  both(acks("1"), minRF(2)), safe: durableSide,
		faults: hasFault("that cuts a partition leader off from its followers", leaderCut, cuts...),
		count:  lostBy(slices.Concat(cuts, brokerDown)), excuses: []string{checker.Lost, checker.LostAfterRead, checker.InconsistentOffsets}},
	{id: 3, text: "acks=all with min.insync.replicas ≥ 2 and RF ≥ 3 loses no acknowledged message when one broker dies or is cut off.",
		anomaly: "acknowledged records lost",
		unsafe: both(minRF(3), func(in *ClaimInput) string {
			return want(param(in, "acks") == "1" || intParam(in, "min.insync.replicas") < 2, "acks=1 or topicConfig.min.insync.replicas=1")
		}),
		safe: both(durableSide, func(in *ClaimInput) string {
			return want(param(in, "unclean.leader.election.enable") != "true", "unclean leader election off")
		}),
		faults: hasFault("that kills, pauses or cuts off one broker", oneBroker, slices.Concat(brokerDown, cuts)...),
		count:  lostBy(slices.Concat(brokerDown, cuts)), excuses: []string{checker.Lost, checker.LostAfterRead, checker.InconsistentOffsets}},
	{id: 4, text: "acks=all with min.insync.replicas=1 degrades to acks=1 once the ISR shrinks to the leader alone.",
		anomaly: "writes acknowledged by the leader alone",
		unsafe: both(acks("all"), minRF(3), func(in *ClaimInput) string {
			return want(intParam(in, "min.insync.replicas") <= 1, "topicConfig.min.insync.replicas=1")
		}),
		safe:   durableSide,
		faults: hasFault("that takes followers out of the ISR", nil, slices.Concat(brokerDown, cuts)...),
		count: func(c *ConfigSummary) (int64, string) {
			lost, _ := lostBy(slices.Concat(brokerDown, cuts))(c)
			return c.AckedLeaderOnly + c.Anomalies[checker.MinInsync], fmt.Sprintf("%d acknowledged records lost", lost)
		},
		excuses: []string{checker.Lost, checker.LostAfterRead, checker.InconsistentOffsets}},
	{id: 5, text: "With min.insync.replicas=2 and one in-sync replica left, acks=all writes are refused (NOT_ENOUGH_REPLICAS), never accepted unsafely.",
		anomaly: "writes accepted with the ISR below two replicas",
		unsafe: both(acks("all"), func(in *ClaimInput) string {
			return want(intParam(in, "min.insync.replicas") <= 1, "topicConfig.min.insync.replicas=1")
		}),
		safe:   durableSide,
		faults: hasFault("that takes brokers down or cuts them off", nil, slices.Concat(brokerDown, cuts)...),
		count: func(c *ConfigSummary) (int64, string) {
			return c.AckedLeaderOnly + c.Anomalies[checker.MinInsync], fmt.Sprintf("%d refused", refusals(c))
		},
		exercised: func(c *ConfigSummary) (bool, string) {
			n := refusals(c)
			return n > 0, fmt.Sprintf("%d writes refused with NOT_ENOUGH_REPLICAS", n)
		}},
	{id: 6, text: "Unclean leader election trades consistency for availability: on, it loses data; off, the partition stays offline until an in-sync replica returns.",
		anomaly: "acknowledged records lost",
		unsafe: func(in *ClaimInput) string {
			return want(param(in, "unclean.leader.election.enable") == "true", "topicConfig.unclean.leader.election.enable=true")
		},
		safe: func(in *ClaimInput) string {
			return want(param(in, "unclean.leader.election.enable") != "true", "topicConfig.unclean.leader.election.enable=false")
		},
		faults: hasFault("that takes the in-sync replicas down", nil, brokerDown...),
		count:  lostBy(slices.Concat(brokerDown, cuts)),
		exercised: func(c *ConfigSummary) (bool, string) {
			worst := 0.0
			for _, im := range c.Impacts {
				worst = max(worst, im.Unavailable)
			}
			return worst >= 1, fmt.Sprintf("offline for up to %.1fs", worst)
		},
		excuses: []string{checker.Lost, checker.LostAfterRead, checker.InconsistentOffsets, checker.PollSkip}},
	rule7,
	{id: 8, text: "Kafka acknowledges from the page cache: losing un-fsynced writes on every replica loses acknowledged messages unless flush.messages=1.",
		anomaly: "acknowledged records lost",
		unsafe: func(in *ClaimInput) string {
			return want(param(in, "flush.messages") != "1", "flush.messages other than 1")
		},
		safe: func(in *ClaimInput) string {
			return want(param(in, "flush.messages") == "1", "topicConfig.flush.messages=1")
		},
		faults: hasFault("lose-unsynced on every replica at once (target all)", func(f FaultSpec) bool {
			return f.Target == "all" || f.Nodes >= 3
		}, "lose-unsynced"),
		count: lostBy([]string{"lose-unsynced"}), excuses: []string{checker.Lost, checker.LostAfterRead, checker.InconsistentOffsets}},
	{id: 9, text: "Replication, not fsync, protects data: one machine losing its un-fsynced writes loses nothing acknowledged with acks=all.",
		anomaly: "acknowledged records lost",
		unsafe: both(acks("all", "1"), func(in *ClaimInput) string {
			return want(intParam(in, "replication.factor") <= 1, "replicationFactor=1 (no copy on another broker)")
		}),
		safe:   durableSide,
		faults: hasFault("lose-unsynced on one broker", oneBroker, "lose-unsynced"),
		count:  lostBy([]string{"lose-unsynced"}), excuses: []string{checker.Lost, checker.LostAfterRead, checker.InconsistentOffsets}},
	{id: 10, text: "Order is kept only within a partition: records with the same key keep their order, records spread over partitions do not.",
		anomaly: "records read out of send order",
		unsafe: both(func(in *ClaimInput) string {
			return want(param(in, "keys") == "none", "no record keys (keyDistributor NO_KEY)")
		},
			func(in *ClaimInput) string { return want(intParam(in, "partitions") > 1, "more than one partition") }),
		safe: both(func(in *ClaimInput) string {
			k := param(in, "keys")
			return want(k != "none" && k != "nano" && k != "", "keyed records (keys)")
		}, func(in *ClaimInput) string { return want(intParam(in, "partitions") > 1, "more than one partition") }),
		count: func(c *ConfigSummary) (int64, string) {
			return c.ReadInversions + c.Anomalies[checker.Reorder], fmt.Sprintf("%d read by a consumer after a later record of the same producer and key (or producer, unkeyed), %d out of order in a partition's log",
				c.ReadInversions, c.Anomalies[checker.Reorder])
		}},
	{id: 11, text: "Retries can reorder messages unless idempotence is on or max.in.flight=1.",
		anomaly: "records reordered by retries",
		unsafe: both(acks("1", "all"), func(in *ClaimInput) string {
			return want(param(in, "enable.idempotence") == "false" && intParam(in, "max.in.flight") > 1, "idempotence off with maxInFlight above 1")
		}),
		safe: both(acks("1", "all"), func(in *ClaimInput) string {
			return want(param(in, "enable.idempotence") == "true" || intParam(in, "max.in.flight") == 1, "idempotence on or maxInFlight=1")
		}),
		faults: hasFault("after which produce requests fail or time out and are retried", nil, slices.Concat(lostAcks, slowdowns, []string{"corrupt"})...),
		count: func(c *ConfigSummary) (int64, string) {
			retry := caused(c, checker.Reorder, checker.CauseRetry) + caused(c, checker.NonmonotonicSend, checker.CauseRetry)
			trunc := caused(c, checker.Reorder, checker.CauseTruncation) + caused(c, checker.NonmonotonicSend, checker.CauseTruncation)
			note := fmt.Sprintf("%d out of order in the log, %d acknowledged below an earlier send", c.Anomalies[checker.Reorder], c.Anomalies[checker.NonmonotonicSend])
			if trunc > 0 {
				note += fmt.Sprintf("; %d caused by log truncation, not counted", trunc)
			}
			return retry, note
		},
		excuses: []string{checker.Reorder, checker.NonmonotonicSend}},
	{id: 12, text: "Producer retries after a lost acknowledgement create duplicates; idempotence removes them.",
		anomaly: "records written twice",
		unsafe: both(acks("1", "all"), func(in *ClaimInput) string {
			return want(param(in, "enable.idempotence") == "false" && param(in, "transactional") != "true", "idempotence off")
		}),
		safe:   func(in *ClaimInput) string { return want(param(in, "enable.idempotence") == "true", "idempotence on") },
		faults: hasFault("that loses acknowledgements (drop-responses, kills, cuts)", nil, lostAcks...),
		count: func(c *ConfigSummary) (int64, string) {
			in, out := attributed(c, checker.Duplicate, lostAcks)
			if out > 0 {
				return in, fmt.Sprintf("%d more away from the faults, not counted", out)
			}
			return in, ""
		},
		excuses: []string{checker.Duplicate}},
	{id: 13, text: "Transactions make consume-transform-produce exactly-once; read_committed consumers never see aborted data.",
		anomaly: "aborted or uncommitted reads and duplicate or missing outputs",
		unsafe: func(in *ClaimInput) string {
			transform := param(in, "consumer_mode") == "transform"
			return want((transform && param(in, "commit_mode") != "transactional") ||
				(!transform && param(in, "transactional") == "true" && param(in, "isolation.level") != "read_committed"),
				"consume-transform-produce without transactions, or transactional producers read with read_uncommitted")
		},
		safe: func(in *ClaimInput) string {
			return want(param(in, "transactional") == "true" && param(in, "isolation.level") == "read_committed" &&
				(param(in, "consumer_mode") != "transform" || param(in, "commit_mode") == "transactional"),
				"transactions read with read_committed")
		},
		faults: func(in *ClaimInput) string {
			if param(in, "consumer_mode") == "transform" {
				return hasFault("that kills brokers or consumers mid-transaction", nil, slices.Concat(lostAcks, consumerCrashes)...)(in)
			}
			r, _ := strconv.ParseFloat(param(in, "abort_ratio"), 64)
			return want(r > 0, "producer.abortRatio above 0, so some transactions abort")
		},
		count: func(c *ConfigSummary) (int64, string) {
			a := c.Anomalies
			n := a[checker.AbortedRead] + a[checker.UncommittedRead] + a[checker.DuplicateOutput] + a[checker.MissingOutput]
			return n, fmt.Sprintf("aborted reads %d, uncommitted reads %d, duplicate outputs %d, missing outputs %d",
				a[checker.AbortedRead], a[checker.UncommittedRead], a[checker.DuplicateOutput], a[checker.MissingOutput])
		},
		excuses: []string{checker.AbortedRead, checker.UncommittedRead, checker.DuplicateOutput, checker.MissingOutput, checker.ProcessedTwice}},
	{id: 14, text: "Auto-commit can lose messages when a consumer crashes after committing but before processing; commit-after-processing gives at-least-once.",
		anomaly: "records committed but never processed",
		unsafe: func(in *ClaimInput) string {
			m := param(in, "commit_mode")
			return want(m == "auto" || m == "manual-before-processing", "consumer.commit auto or manual-before-processing")
		},
		safe: func(in *ClaimInput) string {
			return want(param(in, "commit_mode") == "manual-after-processing", "consumer.commit manual-after-processing")
		},
		faults: hasFault("that crashes a consumer", nil, consumerCrashes...),
		count: func(c *ConfigSummary) (int64, string) {
			in, out := attributed(c, checker.CommittedUnprocessed, consumerCrashes)
			note := fmt.Sprintf("%d processed twice", c.Anomalies[checker.ProcessedTwice])
			if out > 0 {
				note += fmt.Sprintf("; %d more away from the crashes, not counted", out)
			}
			return in, note
		},
		excuses: []string{checker.CommittedUnprocessed}},
	rule15,
	rule16,
	rule17,
}
