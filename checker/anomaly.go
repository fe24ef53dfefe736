package checker

import (
	"slices"
	"sort"
	"strings"
)

// Anomaly names, as in Jepsen's Kafka workload where one exists. Every name is always present
// in Result.Anomalies, with a zero count when the history shows none.
const (
	// Lost is an acknowledged send (ok) whose value no read ever saw, although a consumer read
	// past its acknowledged offset: some read session of one process, uninterrupted by
	// assign/seek/crash, started at or below the offset and read at or above it. A send in a
	// transaction counts only when the transaction committed (ok); so does Unseen.
	Lost = "lost"
	// LostAfterRead is an acknowledged send that some read returned but the final drain did
	// not, although the drain read its partition up to the acknowledged offset: the log lost
	// it after a consumer had read it (a leader truncated it, an unclean election replaced
	// it). Counted once per value.
	LostAfterRead = "lost-after-read"
	// Unseen is an acknowledged send whose value no read saw and whose offset no read session
	// covered: not yet proof of loss.
	Unseen = "unseen"
	// Duplicate is a value read at more than one distinct (partition, offset). Counted once
	// per value.
	Duplicate = "duplicate"
	// InconsistentOffsets is one (partition, offset) associated with more than one value across
	// acknowledgements and reads (counted once per offset), or a value that was read but never
	// at the partition and offset its send was acknowledged with while no other value was seen
	// there (counted once per value).
	InconsistentOffsets = "inconsistent-offsets"
	// NonmonotonicSend is an acknowledged send whose offset is lower than that of an earlier
	// invoked, acknowledged send of the same producer session (process, until it crashes) to the
	// same partition. Counted once per later send.
	NonmonotonicSend = "nonmonotonic-send"
	// Reorder is per-key order broken on one partition. Walking the partition's log in offset
	// order (each value at the first offset it was read at), a keyed value v is reordered when an
	// earlier value u with the same key was invoked after v was acknowledged (real-time order),
	// or was invoked later by the same producer session (producer order). Counted once per v.
	Reorder = "reorder"
	// PollSkip is a gap between two successive records one process read from one partition in
	// two polls of one read session (no assign, seek or crash between them), or between a known start
	// position (assign/seek offsets) and the first record, where an offset inside the gap is
	// known to exist: some read saw a value there, or a send was acknowledged there whose
	// transaction (if any) committed. Counted once per gap.
	PollSkip = "poll-skip"
	// NonmonotonicPoll is a record read at an offset at or below the previous record one process
	// read from the same partition in an earlier poll of the same read session (or below its
	// known start position). Counted once per record.
	NonmonotonicPoll = "nonmonotonic-poll"
	// AbortedRead (Jepsen's G1a) is a value some read saw although its send definitely failed (fail) or
	// its transaction aborted. Counted once per value.
	AbortedRead = "aborted-read"
	// UncommittedRead applies to read_committed runs: a transactional value first read before
	// its transaction's commit was invoked, or whose transaction never invoked a commit, and
	// which did not abort (that is AbortedRead). Counted once per value.
	UncommittedRead = "uncommitted-read"
	// MinInsync is a send acknowledged (ok) with acks=all while the partition's ISR, as sampled
	// by FMeta events, was known to be smaller than min.insync.replicas for the whole send: the
	// latest sample at or before the send's invoke was too small, and every sample from then
	// to InsyncSettle after its ok (at least one) is too small (without that bracket the ISR
	// may have grown between samples; and a leader takes a caught-up follower back in its ISR
	// before the metadata shows it). Such a write should have failed with NOT_ENOUGH_REPLICAS.
	// The minimum comes from the sample's MinInsyncReplicas, else the run header. A change
	// and its reversal both between two samples goes unseen.
	MinInsync = "min-insync"
	// ProcessedTwice is a (partition, offset) that FProcess events reported as processed more
	// than once. Counted once per offset.
	ProcessedTwice = "processed-twice"
	// CommittedUnprocessed is an offset known to exist, at or above the lowest offset processed
	// on its partition and below the highest offset committed there (ok commits; a commit
	// names the next offset to read), that no FProcess event ever reported: the consumer
	// committed past a record it never processed. Checked only on partitions with FProcess
	// events. Counted once per offset.
	CommittedUnprocessed = "committed-unprocessed"
	// MissingOutput applies to consume-transform-produce runs (outputs are values
	// "<input>/<output>", see history.Event.Value): an input known to exist (as for PollSkip),
	// at an offset below the highest offset committed on its partition, with no output read
	// from the output topic (outputs of aborted transactions do not count). The transformer
	// committed past an input whose output is not in the output. Counted once per input.
	MissingOutput = "missing-output"
	// DuplicateOutput applies to consume-transform-produce runs: an input with more than one
	// output read from the output topic (distinct output values, plus one for each output
	// value read at more than one offset; aborted transactions' outputs do not count).
	// Counted once per input.
	DuplicateOutput = "duplicate-output"
)

// Transactional anomalies, as Jepsen's Kafka workload (jepsen/tests/kafka.clj) reports them.
// The dependency graph (see elle.go) has one node per transaction that did not abort and per
// poll, in runs with transactions, and the edges Jepsen draws: ww from the writer of one
// existing offset to the writer of the next (offset order, transactions only), wr from the
// writer of the highest offset a node read on a partition to the reader, process from each
// node of a process to its next, and realtime from a node to every node that started after it
// completed (transitively reduced). Like Jepsen, it draws no rw edges: a reader that has not
// yet seen a write is no anomaly in Kafka, where a consumer may be any distance behind and a
// poll may return part of a committed transaction (max.poll.records, fetch sizes, and markers
// reaching a transaction's partitions one by one). So Elle's G1b (intermediate read),
// G-single and G2 (read skew and anti-dependency cycles), which only such partial reads
// produce here, are not reported; Jepsen's workload does not report them either.
// A transaction's reads are the inputs of its consume-transform-produce outputs; it runs from
// its process's last poll before it began (or its begin) to the completion of its commit.
// Cycle anomalies count strongly connected components of the named edges that contain an
// edge of the kind the name requires.
const (
	// G0 is a cycle of ww edges: two transactions wrote two partitions in opposite orders.
	// Informational (see Informational).
	G0 = "G0"
	// G0Process is a cycle of ww and process edges through at least one process edge.
	// Informational.
	G0Process = "G0-process"
	// G0Realtime is a cycle of ww and realtime edges through at least one realtime edge.
	// Informational: offset order is not commit order (a transaction that began earlier may
	// append later and commit after).
	G0Realtime = "G0-realtime"
	// G1c (circular information flow) is a cycle of wr edges: each transaction read what the
	// next wrote. With read_committed no transaction sees a write before its commit, so it is
	// impossible. Cycles through ww edges are not counted here: offset order is not a commit
	// order in Kafka (Jepsen allows G1c with ww dependencies).
	G1c = "G1c"
	// G1cProcess is a cycle of wr and process edges through at least one process edge.
	G1cProcess = "G1c-process"
	// G1cRealtime is a cycle of wr and realtime edges through at least one realtime edge: a
	// node read a write of a transaction that began after the node completed.
	G1cRealtime = "G1c-realtime"
	// PrecommittedRead is a transaction that read a value it wrote itself: a poll by its
	// process while it was open that returned one of its values, or an output whose input it
	// sent. Kafka hides a transaction's records from every reader until it commits.
	PrecommittedRead = "precommitted-read"
	// IntPollSkip is a PollSkip whose two records came from the same poll: one fetch returns
	// a contiguous stretch of the log, so it cannot step over a record that exists.
	IntPollSkip = "int-poll-skip"
	// IntNonmonotonicPoll is a NonmonotonicPoll whose two records came from the same poll.
	IntNonmonotonicPoll = "int-nonmonotonic-poll"
	// IntSendSkip is two successive sends of one transaction to one partition with an
	// existing offset of another writer between them. Informational.
	IntSendSkip = "int-send-skip"
	// IntNonmonotonicSend is a transaction's send acknowledged below its previous send to the
	// same partition (counted here instead of NonmonotonicSend).
	IntNonmonotonicSend = "int-nonmonotonic-send"
)

// Informational maps the anomalies the checker counts although they break nothing Kafka
// promises to the reason. Jepsen's Kafka workload reports them under these names and lists
// them among its allowed error types, so they never make a run invalid; no guarantee forbids
// them here either. Result.Anomalies carries the reason with their counts.
var Informational = map[string]string{
	IntSendSkip: "Kafka's transactions do not isolate writes: other producers' records interleave with a transaction's in every partition " +
		"(Jepsen's Kafka workload reports int-send-skip and allows it)",
	G0: "Kafka's transactions do not isolate writes, so two transactions may append to two partitions in opposite orders " +
		"(Jepsen's Kafka workload reports G0 and allows it)",
	G0Process: "a ww cycle through a process edge is still a write cycle, which Kafka's transactions do not prevent " +
		"(Jepsen's Kafka workload reports G0-process and allows it)",
	G0Realtime: "offset order is not commit order: a transaction that began later may append earlier " +
		"(Jepsen's Kafka workload reports G0-realtime and allows it)",
}

// AnomalyNames lists every anomaly the checker reports, in report order.
var AnomalyNames = []string{
	Lost, LostAfterRead, Unseen, Duplicate, InconsistentOffsets, NonmonotonicSend, IntNonmonotonicSend, IntSendSkip, Reorder, PollSkip,
	IntPollSkip, NonmonotonicPoll, IntNonmonotonicPoll, AbortedRead, UncommittedRead, PrecommittedRead, MinInsync, ProcessedTwice,
	CommittedUnprocessed, MissingOutput, DuplicateOutput, G0, G0Process, G0Realtime, G1c, G1cProcess, G1cRealtime,
}

// MaxExamples is how many examples each anomaly keeps; default 10.
const MaxExamples = 10

// Anomaly is the count of one kind of anomaly and up to MaxExamples concrete examples.
type Anomaly struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
	// Informational, when set, says why this anomaly breaks nothing Kafka promises (see
	// Informational): it is counted for the reader and judges nothing.
	Informational string    `json:"informational,omitempty"`
	Examples      []Example `json:"examples,omitempty"`
	// Faults counts every instance by the fault kinds whose windows, widened by
	// FaultHorizon on both sides, overlap the operations involved (for Lost, from the send
	// to the end of the history: whatever lost an acknowledged record came after its
	// acknowledgement): the kinds in order joined by "+" ("kill+partition"), or NoFault. It
	// is what lets a claim count only the anomalies its faults caused.
	Faults map[string]int64 `json:"faults,omitempty"`
	// Causes counts the instances of Reorder and NonmonotonicSend by mechanism: CauseRetry
	// when both records involved sit at their acknowledged offsets (only a resent batch puts
	// them out of order), CauseTruncation when an offset involved later held another value
	// or a record involved was lost (the log was truncated and written again).
	Causes map[string]int64 `json:"causes,omitempty"`
	// spans are the instances' [start, end] times, until attribute turns them into Faults.
	spans [][2]int64
}

// Attribution labels (Anomaly.Faults and Anomaly.Causes).
const (
	// NoFault labels instances that overlap no fault window.
	NoFault = "none"
	// CauseRetry and CauseTruncation are the mechanisms of an order anomaly.
	CauseRetry      = "retry"
	CauseTruncation = "truncation"
)

// FaultHorizon is how far before a fault starts and after it ends an anomaly's operations
// may lie and still count as caused by it: 5s. Effects trail their causes (a record
// acknowledged just before its leader is killed is lost by the kill; a rebalance completes
// after the consumer that caused it came back).
const FaultHorizon = int64(5e9)

// Example is one concrete instance of an anomaly. Times are nanoseconds since the run started.
type Example struct {
	Value     string  `json:"value,omitempty"`
	Topic     string  `json:"topic,omitempty"`
	Partition int32   `json:"partition"`
	Offsets   []int64 `json:"offsets,omitempty"`
	// Start and End bound the operations involved (invoke to completion, or a single event).
	Start   int64  `json:"start"`
	End     int64  `json:"end"`
	Process int    `json:"process"`
	Detail  string `json:"detail,omitempty"`
	// Faults are the IDs of the fault windows overlapping [Start, End].
	Faults []int64 `json:"faults,omitempty"`
}

// FaultWindow is one fault from its start to its end event. End is the end of the history
// when the fault never ended.
type FaultWindow struct {
	ID     int64   `json:"id"`
	Kind   string  `json:"kind"`
	Target string  `json:"target,omitempty"`
	Nodes  []int32 `json:"nodes,omitempty"`
	Start  int64   `json:"start"`
	End    int64   `json:"end"`
	// Open is true when the history has no end event for the fault.
	Open bool `json:"open,omitempty"`
}

// anomalies collects counts and examples as the analyses find them.
type anomalies map[string]*Anomaly

func newAnomalies() anomalies {
	a := make(anomalies, len(AnomalyNames))
	for _, n := range AnomalyNames {
		a[n] = &Anomaly{Name: n, Informational: Informational[n]}
	}
	return a
}

// add counts one anomaly whose operations span [start, end] and keeps ex while fewer than
// MaxExamples are kept. ex is built lazily so the common case allocates little.
func (a anomalies) add(name string, start, end int64, ex func() Example) {
	an := a[name]
	an.Count++
	an.spans = append(an.spans, [2]int64{start, end})
	if len(an.Examples) < MaxExamples {
		an.Examples = append(an.Examples, ex())
	}
}

// addCause is add for an anomaly whose mechanism is known (Anomaly.Causes).
func (a anomalies) addCause(name, cause string, start, end int64, ex func() Example) {
	an := a[name]
	if an.Causes == nil {
		an.Causes = map[string]int64{}
	}
	an.Causes[cause]++
	a.add(name, start, end, ex)
}

// attribute counts every anomaly's instances by the fault kinds they overlap (see
// Anomaly.Faults) and drops the spans.
func (a anomalies) attribute(ws []FaultWindow) {
	for _, an := range a {
		if len(an.spans) == 0 {
			continue
		}
		an.Faults = map[string]int64{}
		for _, sp := range an.spans {
			an.Faults[faultKinds(ws, sp[0], sp[1])]++
		}
		an.spans = nil
	}
}

// faultKinds names the kinds of the fault windows that overlap [start, end] once widened by
// FaultHorizon, sorted and joined by "+", or NoFault.
func faultKinds(ws []FaultWindow, start, end int64) string {
	var kinds []string
	for _, w := range ws {
		if w.Start-FaultHorizon <= end && w.End+FaultHorizon >= start && !slices.Contains(kinds, w.Kind) {
			kinds = append(kinds, w.Kind)
		}
	}
	if len(kinds) == 0 {
		return NoFault
	}
	slices.Sort(kinds)
	return strings.Join(kinds, "+")
}

// attachFaults sets Faults on every example to the windows overlapping it.
func (a anomalies) attachFaults(ws []FaultWindow) {
	for _, an := range a {
		for i := range an.Examples {
			ex := &an.Examples[i]
			ex.Faults = nil
			for _, w := range ws {
				if w.Start <= ex.End && w.End >= ex.Start {
					ex.Faults = append(ex.Faults, w.ID)
				}
			}
		}
	}
}

// sortExamples orders each anomaly's examples by time, for stable output.
func (a anomalies) sortExamples() {
	for _, an := range a {
		sort.SliceStable(an.Examples, func(i, j int) bool { return an.Examples[i].Start < an.Examples[j].Start })
	}
}
