package checker

import (
	"testing"

	"github.com/kchaos/kchaos/history"
)

// TestGuaranteeTable checks which guarantees each configuration and fault set claims.
func TestGuaranteeTable(t *testing.T) {
	kill := []FaultWindow{{ID: 1, Kind: "kill", Target: "leader(t,0)", Nodes: []int32{1}, Start: 1, End: 2}}
	delay := []FaultWindow{{ID: 1, Kind: "delay", Start: 1, End: 2}}
	fsyncAll := []FaultWindow{{ID: 1, Kind: "lose-unfsynced-writes", Target: "all", Nodes: []int32{1, 2, 3}, Start: 1, End: 2}}
	fsyncOne := []FaultWindow{{ID: 1, Kind: "lose-unfsynced-writes", Nodes: []int32{1}, Start: 1, End: 2}}
	strong := history.Run{Acks: "all", ReplicationFactor: 3, MinInsyncReplicas: 2}
	with := func(r history.Run, f func(*history.Run)) history.Run { f(&r); return r }
	cases := []struct {
		name    string
		run     history.Run
		faults  []FaultWindow
		claimed []string // exactly these guarantees are claimed
	}{
		{"acks=0 no faults", history.Run{Acks: "0"}, nil,
			[]string{"monotonic-reads", "no-aborted-reads"}},
		{"acks=1 no faults", history.Run{Acks: "1", MaxInFlight: 5}, nil,
			[]string{"acked-writes-durable", "consistent-offsets", "monotonic-reads", "no-aborted-reads"}},
		{"acks=1 leader kill", history.Run{Acks: "1", MaxInFlight: 5}, kill,
			[]string{"monotonic-reads", "no-aborted-reads"}},
		{"acks=1 delay only", history.Run{Acks: "1", MaxInFlight: 5}, delay,
			[]string{"acked-writes-durable", "consistent-offsets", "monotonic-reads", "no-aborted-reads"}},
		{"acks=all RF=3 min.insync=2 leader kill", strong, kill,
			[]string{"acked-writes-durable", "consistent-offsets", "monotonic-reads", "no-aborted-reads", "min-insync-enforced"}},
		{"acks=all min.insync=1 leader kill", with(strong, func(r *history.Run) { r.MinInsyncReplicas = 1 }), kill,
			[]string{"monotonic-reads", "no-aborted-reads", "min-insync-enforced"}},
		{"acks=all unclean election with faults", with(strong, func(r *history.Run) { r.UncleanElection = true }), kill,
			[]string{"no-aborted-reads", "min-insync-enforced"}},
		{"acks=all power loss on every replica", strong, fsyncAll,
			[]string{"no-aborted-reads", "min-insync-enforced"}},
		{"acks=all power loss on every replica, flush.messages=1", with(strong, func(r *history.Run) { r.FlushMessages = 1 }), fsyncAll,
			[]string{"acked-writes-durable", "consistent-offsets", "monotonic-reads", "no-aborted-reads", "min-insync-enforced"}},
		{"acks=all power loss on one replica", strong, fsyncOne,
			[]string{"acked-writes-durable", "consistent-offsets", "monotonic-reads", "no-aborted-reads", "min-insync-enforced"}},
		{"idempotent, unclean election with faults", with(strong, func(r *history.Run) { r.Idempotent, r.UncleanElection = true, true }), kill,
			[]string{"no-duplicates", "no-aborted-reads", "min-insync-enforced"}},
		{"idempotent", with(strong, func(r *history.Run) { r.Idempotent = true }), nil,
			[]string{"acked-writes-durable", "consistent-offsets", "no-duplicates", "producer-order", "monotonic-reads", "no-aborted-reads", "min-insync-enforced"}},
		{"max.in.flight=1", history.Run{Acks: "1", MaxInFlight: 1}, kill,
			[]string{"producer-order", "monotonic-reads", "no-aborted-reads"}},
		{"read_committed, auto commit", history.Run{Acks: "1", Transactional: true, IsolationLevel: "read_committed", CommitMode: "auto"}, kill,
			[]string{"no-duplicates", "producer-order", "monotonic-reads", "no-aborted-reads", "read-committed"}},
		{"transactional read_uncommitted", history.Run{Acks: "1", Transactional: true}, kill,
			[]string{"no-duplicates", "producer-order", "monotonic-reads"}},
		{"commit after processing", history.Run{Acks: "1", CommitMode: "after-process"}, kill,
			[]string{"monotonic-reads", "no-aborted-reads", "at-least-once-processing"}},
		{"exactly-once consume-transform-produce", history.Run{Acks: "all", Transactional: true, IsolationLevel: "read_committed", CommitMode: "transactional"}, kill,
			[]string{"no-duplicates", "producer-order", "monotonic-reads", "no-aborted-reads", "read-committed", "min-insync-enforced", "at-least-once-processing", "exactly-once-processing"}},
		{"transactional consume-transform-produce read_uncommitted", history.Run{Acks: "all", Transactional: true, CommitMode: "transactional"}, kill,
			[]string{"no-duplicates", "producer-order", "monotonic-reads", "min-insync-enforced", "at-least-once-processing"}},
		{"consume-transform-produce without transactions", history.Run{Acks: "all", Idempotent: true, IsolationLevel: "read_committed", CommitMode: "manual-after-processing"}, kill,
			[]string{"no-duplicates", "producer-order", "monotonic-reads", "no-aborted-reads", "read-committed", "min-insync-enforced", "at-least-once-processing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := tc.run
			r := &Result{Run: &run, Faults: tc.faults, Anomalies: newAnomalies()}
			Judge(r)
			var got []string
			for _, g := range r.Guarantees {
				if g.Claimed {
					got = append(got, g.Name)
				}
			}
			if len(got) != len(tc.claimed) {
				t.Fatalf("claimed %v, want %v", got, tc.claimed)
			}
			for i := range got {
				if got[i] != tc.claimed[i] {
					t.Fatalf("claimed %v, want %v", got, tc.claimed)
				}
			}
		})
	}
}

// TestVerdict: only forbidden anomalies fail a run; allowed ones are reported but pass.
func TestVerdict(t *testing.T) {
	r := &Result{Run: &history.Run{Acks: "1"}, Faults: []FaultWindow{{ID: 1, Kind: "kill"}}, Anomalies: newAnomalies(),
		Stats: Stats{SendsOK: 10, RecordsRead: 9, Processed: 9, MetaSamples: 1}}
	r.Anomalies[Lost].Count = 1
	r.Anomalies[Duplicate].Count = 2
	Judge(r)
	if r.Verdict != StatusPass {
		t.Fatalf("acks=1 under a leader kill may lose and duplicate: verdict %s", r.Verdict)
	}
	r.Anomalies[NonmonotonicPoll].Count = 1
	Judge(r)
	if r.Verdict != StatusFail || !r.Failed() {
		t.Fatalf("a backward poll is forbidden: verdict %s", r.Verdict)
	}
	r.Anomalies[NonmonotonicPoll].Count = 0
	r.Run.Acks = "all"
	r.Run.ReplicationFactor, r.Run.MinInsyncReplicas = 3, 2
	Judge(r)
	if r.Verdict != StatusFail {
		t.Fatalf("acks=all RF=3 min.insync=2 forbids loss: verdict %s", r.Verdict)
	}
	r.Anomalies[Lost].Count, r.Anomalies[Unseen].Count = 0, 3
	Judge(r)
	if r.Verdict != StatusUnknown {
		t.Fatalf("unseen writes leave durability undecided: verdict %s", r.Verdict)
	}
}

// TestExactlyOnceVerdict: in a transactional consume-transform-produce run, an input with two
// outputs or none fails exactly-once-processing; without transactions a duplicate output is
// allowed (at-least-once) but a missing one is not.
func TestExactlyOnceVerdict(t *testing.T) {
	eos := history.Run{Acks: "all", Transactional: true, IsolationLevel: "read_committed", CommitMode: "transactional"}
	alo := history.Run{Acks: "all", Idempotent: true, IsolationLevel: "read_committed", CommitMode: "manual-after-processing"}
	for _, tc := range []struct {
		name    string
		run     history.Run
		anomaly string
		status  string
	}{
		{"eos clean", eos, "", StatusPass},
		{"eos duplicate output", eos, DuplicateOutput, StatusFail},
		{"eos missing output", eos, MissingOutput, StatusFail},
		{"at-least-once duplicate output", alo, DuplicateOutput, StatusNotClaimed},
		{"at-least-once missing output", alo, MissingOutput, StatusNotClaimed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := tc.run
			r := &Result{Run: &run, Anomalies: newAnomalies(), Stats: Stats{SendsOK: 4, RecordsRead: 4, Processed: 2, Outputs: 2, OutputsRead: 2, MetaSamples: 1}}
			if tc.anomaly != "" {
				r.Anomalies[tc.anomaly].Count = 1
			}
			Judge(r)
			var eo, al Guarantee
			for _, g := range r.Guarantees {
				switch g.Name {
				case "exactly-once-processing":
					eo = g
				case "at-least-once-processing":
					al = g
				}
			}
			if eo.Status != tc.status {
				t.Errorf("exactly-once-processing %s, want %s: %+v", eo.Status, tc.status, eo)
			}
			if wantFail := tc.anomaly == MissingOutput; (al.Status == StatusFail) != wantFail {
				t.Errorf("at-least-once-processing %s with %q: %+v", al.Status, tc.anomaly, al)
			}
		})
	}
}

// TestInformationalJudgesNothing: an informational anomaly carries its reason in the result
// and no guarantee forbids it, so a history full of them still passes.
func TestInformationalJudgesNothing(t *testing.T) {
	for _, row := range guaranteeTable {
		for _, a := range row.forbids {
			if Informational[a] != "" {
				t.Errorf("guarantee %s forbids informational anomaly %s", row.name, a)
			}
		}
	}
	res, err := CheckFile("testdata/int-send-skip-bad.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	a := res.Anomalies[IntSendSkip]
	if a.Count == 0 || a.Informational == "" || res.Failed() {
		t.Fatalf("int-send-skip: count %d, informational %q, verdict %s", a.Count, a.Informational, res.Verdict)
	}
	if res.Anomalies[Lost].Informational != "" {
		t.Errorf("lost is labelled informational")
	}
}
