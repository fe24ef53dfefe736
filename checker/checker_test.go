package checker

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kchaos/kchaos/history"
)

// TestFixtures checks every hand-written history in testdata: each analysis has a known-good
// (-ok) and known-bad (-bad) history. want lists the exact non-zero counts; every other anomaly
// must be zero.
func TestFixtures(t *testing.T) {
	cases := []struct {
		file    string
		want    map[string]int64
		verdict string
	}{
		{"lost-ok", nil, StatusUnknown},
		{"lost-bad", map[string]int64{Lost: 1, PollSkip: 1}, StatusFail},
		{"unseen-bad", map[string]int64{Unseen: 2}, StatusUnknown},
		{"duplicate-ok", nil, StatusUnknown},
		{"duplicate-bad", map[string]int64{Duplicate: 1}, StatusFail},
		{"inconsistent-offsets-ok", nil, StatusUnknown},
		{"inconsistent-offsets-bad", map[string]int64{InconsistentOffsets: 3, Lost: 1, PollSkip: 1}, StatusFail},
		{"nonmonotonic-send-ok", nil, StatusUnknown},
		{"nonmonotonic-send-bad", map[string]int64{NonmonotonicSend: 1}, StatusFail},
		{"reorder-ok", nil, StatusUnknown},
		{"reorder-bad", map[string]int64{Reorder: 1}, StatusFail},
		{"poll-skip-ok", nil, StatusUnknown},
		{"poll-skip-bad", map[string]int64{PollSkip: 1}, StatusFail},
		{"nonmonotonic-poll-ok", nil, StatusUnknown},
		{"nonmonotonic-poll-bad", map[string]int64{NonmonotonicPoll: 1}, StatusFail},
		{"aborted-read-ok", nil, StatusUnknown},
		{"aborted-read-bad", map[string]int64{AbortedRead: 2}, StatusFail},
		{"uncommitted-read-ok", nil, StatusUnknown},
		{"uncommitted-read-bad", map[string]int64{UncommittedRead: 2}, StatusFail},
		{"min-insync-ok", nil, StatusUnknown},
		{"min-insync-bad", map[string]int64{MinInsync: 2}, StatusFail},
		{"processed-twice-ok", nil, StatusUnknown},
		{"processed-twice-bad", map[string]int64{ProcessedTwice: 1}, StatusUnknown},
		{"committed-unprocessed-ok", nil, StatusUnknown},
		{"committed-unprocessed-bad", map[string]int64{CommittedUnprocessed: 2}, StatusFail},
		{"missing-output-ok", nil, StatusUnknown},
		{"missing-output-bad", map[string]int64{MissingOutput: 2}, StatusFail},
		{"duplicate-output-ok", nil, StatusUnknown},
		{"duplicate-output-bad", map[string]int64{DuplicateOutput: 2, ProcessedTwice: 2}, StatusFail},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			res, err := CheckFile(filepath.Join("testdata", tc.file+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range AnomalyNames {
				if got, want := res.Count(n), tc.want[n]; got != want {
					t.Errorf("%s: got %d, want %d; examples: %+v", n, got, want, res.Anomalies[n].Examples)
				}
				if a := res.Anomalies[n]; int64(len(a.Examples)) != min(a.Count, MaxExamples) {
					t.Errorf("%s: %d examples for count %d", n, len(a.Examples), a.Count)
				}
			}
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s: %+v", res.Verdict, tc.verdict, res.Guarantees)
			}
			var sb strings.Builder
			if err := WriteSummary(&sb, res); err != nil {
				t.Fatal(err)
			}
			for n, c := range tc.want {
				if !strings.Contains(sb.String(), fmt.Sprintf("%s: %d", n, c)) {
					t.Errorf("summary lacks %q:\n%s", fmt.Sprintf("%s: %d", n, c), sb.String())
				}
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGoodFixturesAreLinearizable runs porcupine over every -ok fixture.
func TestGoodFixturesAreLinearizable(t *testing.T) {
	files, _ := filepath.Glob("testdata/*-ok.jsonl")
	for _, f := range files {
		lr, err := CheckLinearizableFile(f, LinearOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if lr.Result != LinearOK {
			t.Errorf("%s: porcupine says %s (%+v)", f, lr.Result, lr.Partitions)
		}
	}
}

// TestAckedLeaderOnly: acks=all sends acknowledged while the ISR was the leader alone.
func TestAckedLeaderOnly(t *testing.T) {
	for f, want := range map[string]int64{"min-insync-bad": 2, "min-insync-ok": 0} {
		res, err := CheckFile(filepath.Join("testdata", f+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Stats.AckedLeaderOnly != want {
			t.Errorf("%s: %d acked by the leader alone, want %d", f, res.Stats.AckedLeaderOnly, want)
		}
	}
}

func TestMalformedHistoryNamesLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "history.jsonl")
	os.WriteFile(p, []byte("{\"i\":0,\"t\":0,\"p\":1,\"type\":\"ok\",\"f\":\"poll\"}\n{\"i\":1,\"t\":\n"), 0o644)
	_, err := CheckFile(p)
	if err == nil || !strings.Contains(err.Error(), p+":2") {
		t.Fatalf("want error naming %s:2, got %v", p, err)
	}
}

// TestFixturesAreWellFormed keeps the fixtures honest: dense indexes, time never going back.
func TestFixturesAreWellFormed(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.jsonl")
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r := history.NewReader(fh, f)
		var e history.Event
		var last int64
		for i := int64(0); ; i++ {
			if err := r.Next(&e); err != nil {
				if err != io.EOF {
					t.Error(err)
				}
				break
			}
			if e.Index != i || e.Time < last {
				t.Errorf("%s:%d: index %d time %d after %d", f, r.Line(), e.Index, e.Time, last)
			}
			last = e.Time
		}
		fh.Close()
	}
}

// TestLinearizableBad: a poll returned a value before its send was invoked (a read from the
// future). The linear analyses cannot see it; porcupine must, and must write a visualisation
// annotated with the fault window.
func TestLinearizableBad(t *testing.T) {
	for _, f := range []string{"linearizable-bad", "reorder-bad", "inconsistent-offsets-bad"} {
		dir := t.TempDir()
		lr, err := CheckLinearizableFile(filepath.Join("testdata", f+".jsonl"), LinearOptions{OutDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if lr.Result != LinearIllegal || len(lr.Illegal) != 1 || lr.Illegal[0] != "t/0" {
			t.Fatalf("%s: got %+v, want illegal t/0", f, lr)
		}
		html, err := os.ReadFile(lr.Partitions[0].Visualization)
		if err != nil {
			t.Fatal(err)
		}
		if f == "linearizable-bad" && !strings.Contains(string(html), "fault 1: kill") {
			t.Errorf("visualisation lacks the fault annotation")
		}
	}
	res, err := CheckFile("testdata/linearizable-bad.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range AnomalyNames {
		if res.Count(n) != 0 {
			t.Errorf("%s: %d, want 0 (only porcupine sees this history's anomaly)", n, res.Count(n))
		}
	}
	res.Linearizable, _ = CheckLinearizableFile("testdata/linearizable-bad.jsonl", LinearOptions{})
	Judge(res)
	if res.Verdict != StatusFail {
		t.Errorf("verdict %s, want fail", res.Verdict)
	}
}

// TestTransformFixtureDetails: the consume-transform-produce fixtures' output counts and the
// examples a reader needs (which outputs repeat, up to which committed offset).
func TestTransformFixtureDetails(t *testing.T) {
	dup, err := CheckFile(filepath.Join("testdata", "duplicate-output-bad.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if dup.Stats.Outputs != 4 || dup.Stats.OutputsRead != 4 {
		t.Errorf("duplicate-output-bad: outputs %d read %d, want 4 and 4", dup.Stats.Outputs, dup.Stats.OutputsRead)
	}
	ex := dup.Anomalies[DuplicateOutput].Examples[0]
	if ex.Value != "1-1" || ex.Topic != "in" || !strings.Contains(ex.Detail, `"1-1/10-0"`) || !strings.Contains(ex.Detail, `"1-1/10-2"`) {
		t.Errorf("duplicate-output example: %+v", ex)
	}
	miss, err := CheckFile(filepath.Join("testdata", "missing-output-bad.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if miss.Stats.Outputs != 2 || miss.Stats.OutputsRead != 0 || miss.Stats.Untransformed != 1 {
		t.Errorf("missing-output-bad: outputs %d read %d untransformed %d, want 2, 0, 1 (1-3)", miss.Stats.Outputs, miss.Stats.OutputsRead, miss.Stats.Untransformed)
	}
	var values []string
	for _, ex := range miss.Anomalies[MissingOutput].Examples {
		values = append(values, ex.Value)
		if ex.Offsets[1] != 2 || ex.Process != 10 {
			t.Errorf("missing-output example: %+v", ex)
		}
	}
	if strings.Join(values, ",") != "1-1,1-2" {
		t.Errorf("missing outputs of %v, want 1-1 and 1-2 (1-3 is past the committed offset)", values)
	}
	var sb strings.Builder
	if err := WriteSummary(&sb, miss); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(sb.String()), " "), "Transform outputs [sent or read, read committed, inputs untransformed] 2, 0, 1") {
		t.Errorf("summary lacks the output counts:\n%s", sb.String())
	}
}
