package checker

import (
	"fmt"
	"strings"

	"github.com/kchaos/kchaos/history"
)

// Guarantee statuses.
const (
	StatusPass       = "pass"
	StatusFail       = "fail"
	StatusUnknown    = "unknown"
	StatusNotClaimed = "not-claimed"
)

// Guarantee is the verdict on one delivery guarantee for one run.
type Guarantee struct {
	Name string `json:"name"`
	// Claim says the guarantee in words.
	Claim string `json:"claim"`
	// Claimed is whether the run's configuration and faults promise it; Reason says why.
	Claimed bool   `json:"claimed"`
	Reason  string `json:"reason"`
	// Forbids lists the anomalies that break it when claimed.
	Forbids []string `json:"forbids"`
	// Violations is the sum of the forbidden anomalies' counts.
	Violations int64 `json:"violations"`
	// Status is pass, fail, unknown, or not-claimed.
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// facts are what the table looks at: the run header and the faults that ran.
type facts struct {
	run           history.Run
	faults        bool // any fault other than a benign one (see benignFaults)
	fsyncLossAll  bool // a lose-unfsynced-writes fault hit at least RF nodes or "all"
	readCommitted bool
	commitMode    string
}

// PowerLoss reports whether a fault kind loses what its brokers wrote since their last fsync
// (chaos's lose-unsynced; older histories name it lose-unfsynced-writes, or after fsync or
// power).
func PowerLoss(kind string) bool {
	k := strings.ToLower(kind)
	return k == "lose-unsynced" || strings.Contains(k, "fsync") || strings.Contains(k, "power")
}

// benignFaults are fault kinds that slow things down but neither kill, pause nor isolate a
// process, so they do not void guarantees that hold only without leader or process faults.
var benignFaults = map[string]bool{"delay": true, "latency": true, "jitter": true, "bandwidth": true, "slow-disk": true}

// atLeastOnceCommitModes are the commit modes that commit only after processing.
var atLeastOnceCommitModes = map[string]bool{
	"manual-after-processing": true, "after-process": true, "commit-after-processing": true, "sync": true, "manual": true,
	"transactional": true, "exactly-once": true,
}

func factsOf(r *Result) facts {
	f := facts{}
	if r.Run != nil {
		f.run = *r.Run
	}
	f.readCommitted = f.run.IsolationLevel == "read_committed"
	f.commitMode = strings.ToLower(f.run.CommitMode)
	for _, w := range r.Faults {
		k := strings.ToLower(w.Kind)
		if PowerLoss(k) {
			if strings.Contains(strings.ToLower(w.Target), "all") || (f.run.ReplicationFactor > 0 && len(w.Nodes) >= f.run.ReplicationFactor) {
				f.fsyncLossAll = true
			}
		}
		if !benignFaults[k] {
			f.faults = true
		}
	}
	return f
}

// durable decides the durability claim shared by lost and inconsistent offsets:
//
//	acks=0                                              → not claimed (claim 1)
//	lose-unfsynced on ≥ RF nodes, flush.messages ≠ 1    → not claimed (claim 8)
//	unclean.leader.election on, with faults             → not claimed (claim 6)
//	acks=all, RF ≥ 3, min.insync ≥ 2                    → claimed under faults (claim 3)
//	acks=1 or weaker acks=all settings, with faults     → not claimed (claims 2, 4)
//	acks=1 or acks=all, no faults                       → claimed
func durable(f facts) (bool, string) {
	r := f.run
	switch {
	case r.Acks == "0":
		return false, "acks=0: the producer never learns of a failed write"
	case f.fsyncLossAll && r.FlushMessages != 1:
		return false, "un-fsynced writes lost on every replica and flush.messages != 1"
	case r.UncleanElection && f.faults:
		return false, "unclean leader election on, with faults"
	case (r.Acks == "all" || r.Acks == "-1") && r.ReplicationFactor >= 3 && r.MinInsyncReplicas >= 2:
		return true, fmt.Sprintf("acks=all, RF=%d, min.insync.replicas=%d, unclean election off", r.ReplicationFactor, r.MinInsyncReplicas)
	case f.faults:
		return false, fmt.Sprintf("acks=%s, RF=%d, min.insync.replicas=%d under leader/process faults", r.Acks, r.ReplicationFactor, r.MinInsyncReplicas)
	default:
		return true, fmt.Sprintf("acks=%s and no faults", r.Acks)
	}
}

// rule is one row of the guarantee table.
type rule struct {
	name, claim string
	forbids     []string
	claimed     func(facts) (bool, string)
	// unknown returns a note when the history cannot decide a guarantee that saw no violation.
	unknown func(*Result) string
}

// guaranteeTable maps configuration and faults to the guarantees a run claims. Every anomaly is
// always reported; only the anomalies a claimed guarantee forbids fail the verdict.
var guaranteeTable = []rule{
	{
		name: "acked-writes-durable", claim: "no acknowledged write is lost",
		forbids: []string{Lost, LostAfterRead}, claimed: durable,
		unknown: func(r *Result) string {
			if r.Count(Unseen) > 0 {
				return fmt.Sprintf("%d acknowledged writes were never reached by any read", r.Count(Unseen))
			}
			if r.Stats.SendsOK > 0 && r.Stats.RecordsRead == 0 {
				return "nothing was read"
			}
			return ""
		},
	},
	{
		name: "consistent-offsets", claim: "every offset holds one value, the one acknowledged there",
		forbids: []string{InconsistentOffsets}, claimed: durable,
	},
	{
		name: "no-duplicates", claim: "producer retries create no duplicates",
		forbids: []string{Duplicate},
		claimed: func(f facts) (bool, string) {
			if f.run.Idempotent || f.run.Transactional {
				return true, "enable.idempotence on"
			}
			return false, "idempotence off: retries may duplicate (claim 12)"
		},
	},
	{
		name: "producer-order", claim: "a producer's sends keep their order within a partition and key",
		forbids: []string{NonmonotonicSend, IntNonmonotonicSend, Reorder},
		claimed: func(f facts) (bool, string) {
			switch {
			case f.run.Acks == "0":
				return false, "acks=0: no retries, but no offsets to order either"
			case f.run.UncleanElection && f.faults:
				// A truncated log puts later sends at offsets below acknowledged earlier ones:
				// that is the loss claim 6 names, not a reorder the producer made.
				return false, "unclean leader election on, with faults: truncation may put later sends below earlier ones"
			case f.run.Idempotent || f.run.Transactional:
				return true, "enable.idempotence on"
			case f.run.MaxInFlight == 1:
				return true, "max.in.flight.requests.per.connection=1"
			}
			return false, fmt.Sprintf("retries with max.in.flight=%d and idempotence off may reorder (claim 11)", f.run.MaxInFlight)
		},
	},
	{
		name: "monotonic-reads", claim: "a consumer neither skips existing records nor goes backwards between rebalances",
		forbids: []string{PollSkip, IntPollSkip, NonmonotonicPoll, IntNonmonotonicPoll},
		claimed: func(f facts) (bool, string) {
			switch {
			case f.run.UncleanElection:
				return false, "unclean leader election may truncate below a consumer's position"
			case f.fsyncLossAll && f.run.FlushMessages != 1:
				return false, "un-fsynced writes lost on every replica rewind the log below a consumer's position"
			}
			return true, "consumers read a partition in offset order"
		},
	},
	{
		name: "no-aborted-reads", claim: "no read sees a failed write or an aborted transaction",
		forbids: []string{AbortedRead},
		claimed: func(f facts) (bool, string) {
			switch {
			case f.readCommitted:
				return true, "isolation.level=read_committed"
			case !f.run.Transactional:
				return true, "no transactions: only definitely failed sends could be read"
			}
			return false, "read_uncommitted consumers may see aborted transactions"
		},
	},
	{
		name: "read-committed", claim: "read_committed consumers see only committed transactions, and no transaction sees another's writes before its commit",
		forbids: []string{UncommittedRead, PrecommittedRead, G1c, G1cProcess, G1cRealtime},
		claimed: func(f facts) (bool, string) {
			if f.readCommitted {
				return true, "isolation.level=read_committed"
			}
			return false, "isolation.level is not read_committed"
		},
	},
	{
		name: "min-insync-enforced", claim: "acks=all writes are refused while the ISR is below min.insync.replicas",
		forbids: []string{MinInsync},
		claimed: func(f facts) (bool, string) {
			if f.run.Acks == "all" || f.run.Acks == "-1" {
				return true, fmt.Sprintf("acks=all, min.insync.replicas=%d (claim 5)", f.run.MinInsyncReplicas)
			}
			return false, "acks is not all"
		},
		unknown: func(r *Result) string {
			if r.Stats.MetaSamples == 0 {
				return "no ISR samples (meta events) in the history"
			}
			return ""
		},
	},
	{
		name: "at-least-once-processing", claim: "no record is committed without being processed",
		forbids: []string{CommittedUnprocessed, MissingOutput},
		claimed: func(f facts) (bool, string) {
			if atLeastOnceCommitModes[f.commitMode] {
				return true, "commit mode " + f.commitMode + " commits after processing"
			}
			return false, fmt.Sprintf("commit mode %q may commit before processing (claim 14)", f.commitMode)
		},
		unknown: noProcessing,
	},
	{
		name: "exactly-once-processing", claim: "each input is processed exactly once: exactly one output of it in the committed output",
		forbids: []string{ProcessedTwice, CommittedUnprocessed, MissingOutput, DuplicateOutput},
		claimed: func(f facts) (bool, string) {
			switch {
			case !f.run.Transactional || (f.commitMode != "transactional" && f.commitMode != "exactly-once"):
				return false, "not a transactional consume-transform-produce run"
			case !f.readCommitted:
				return false, "read_uncommitted readers of the output see aborted transactions' outputs"
			}
			return true, "transactional consume-transform-produce read with read_committed (claim 13)"
		},
		unknown: func(r *Result) string {
			if n := noProcessing(r); n != "" {
				return n
			}
			if r.Stats.Outputs > 0 && r.Stats.OutputsRead == 0 {
				return "no output was read"
			}
			if n := r.Stats.Untransformed; n > 0 {
				return fmt.Sprintf("%d inputs past the committed offsets have no output yet", n)
			}
			return ""
		},
	},
}

func noProcessing(r *Result) string {
	if r.Stats.Processed == 0 {
		return "no process events in the history"
	}
	return ""
}

// LinearizableGuarantee is the name of the guarantee decided by porcupine.
const LinearizableGuarantee = "linearizable-log"

// Judge fills r.Guarantees and r.Verdict from r's run header, faults, anomalies and (when set)
// porcupine result; without a porcupine result the linearizable-log guarantee is left out. It can be called again after the porcupine check adds its result.
func Judge(r *Result) {
	f := factsOf(r)
	r.Guarantees = r.Guarantees[:0]
	for _, row := range guaranteeTable {
		g := Guarantee{Name: row.name, Claim: row.claim, Forbids: row.forbids}
		g.Claimed, g.Reason = row.claimed(f)
		for _, a := range row.forbids {
			g.Violations += r.Count(a)
		}
		note := ""
		if row.unknown != nil {
			note = row.unknown(r)
		}
		g.Status, g.Note = status(g.Claimed, g.Violations > 0, note)
		r.Guarantees = append(r.Guarantees, g)
	}
	if l := r.Linearizable; l != nil {
		g := Guarantee{Name: LinearizableGuarantee, Claim: "each partition's log is linearizable (porcupine)"}
		g.Claimed, g.Reason = durable(f)
		note := ""
		switch l.Result {
		case LinearIllegal:
			g.Violations = int64(len(l.Illegal))
		case LinearUnknown:
			var why []string
			for _, p := range l.Partitions {
				if p.Result == LinearUnknown {
					why = append(why, fmt.Sprintf("%s/%d: %s", p.Topic, p.Partition, p.Reason))
				}
			}
			note = "porcupine could not decide " + strings.Join(why, "; ")
		}
		g.Status, g.Note = status(g.Claimed, g.Violations > 0, note)
		r.Guarantees = append(r.Guarantees, g)
	}
	r.Verdict = StatusPass
	for _, g := range r.Guarantees {
		switch g.Status {
		case StatusFail:
			r.Verdict = StatusFail
		case StatusUnknown:
			if r.Verdict == StatusPass {
				r.Verdict = StatusUnknown
			}
		}
	}
}

func status(claimed, violated bool, unknownNote string) (string, string) {
	switch {
	case !claimed:
		return StatusNotClaimed, ""
	case violated:
		return StatusFail, ""
	case unknownNote != "":
		return StatusUnknown, unknownNote
	}
	return StatusPass, ""
}

// Failed reports whether any claimed guarantee failed: a forbidden anomaly was found.
func (r *Result) Failed() bool { return r.Verdict == StatusFail }
