package checker

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/kchaos/kchaos/history"
)

// TestFixtures runs the scripted checks of testdata/fixtures.txt (datadriven: a command,
// ----, the expected output; go test -run TestFixtures -rewrite regenerates the expectations,
// reviewed as a diff). Commands:
//
//	check file=NAME     the non-zero anomaly counts of testdata/NAME.jsonl (informational ones
//	                    marked so) and its verdict
//	linear file=NAME    porcupine's verdict per partition
//
// Whatever the file says, every check also asserts that examples match counts, the summary
// names each non-zero count and the result encodes as JSON.
func TestFixtures(t *testing.T) {
	datadriven.RunTest(t, "testdata/fixtures.txt", func(t *testing.T, d *datadriven.TestData) string {
		var name string
		d.ScanArgs(t, "file", &name)
		path := filepath.Join("testdata", name+".jsonl")
		switch d.Cmd {
		case "check":
			res, err := CheckFile(path)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			checkInvariants(t, res)
			var b strings.Builder
			for _, n := range AnomalyNames {
				if c := res.Count(n); c != 0 {
					fmt.Fprintf(&b, "%s %d", n, c)
					if res.Anomalies[n].Informational != "" {
						b.WriteString(" informational")
					}
					b.WriteString("\n")
				}
			}
			fmt.Fprintf(&b, "verdict %s\n", res.Verdict)
			return b.String()
		case "linear":
			lr, err := CheckLinearizableFile(path, LinearOptions{})
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			var b strings.Builder
			for _, p := range lr.Partitions {
				fmt.Fprintf(&b, "%s/%d %s\n", p.Topic, p.Partition, p.Result)
			}
			return b.String()
		}
		t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
		return ""
	})
}

// checkInvariants asserts what holds for every result: examples match counts, the summary
// names each non-zero count, the result encodes as JSON.
func checkInvariants(t *testing.T, res *Result) {
	t.Helper()
	var sb strings.Builder
	if err := WriteSummary(&sb, res); err != nil {
		t.Fatal(err)
	}
	for _, n := range AnomalyNames {
		a := res.Anomalies[n]
		if int64(len(a.Examples)) != min(a.Count, MaxExamples) {
			t.Errorf("%s: %d examples for count %d", n, len(a.Examples), a.Count)
		}
		if a.Count > 0 && !strings.Contains(sb.String(), fmt.Sprintf("%s: %d", n, a.Count)) {
			t.Errorf("summary lacks %q:\n%s", fmt.Sprintf("%s: %d", n, a.Count), sb.String())
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
}

// TestEveryAnomalyHasFixtures: each anomaly the checker names has a known-bad history that
// shows it and a known-good one that does not.
func TestEveryAnomalyHasFixtures(t *testing.T) {
	for _, n := range AnomalyNames {
		bad, err := CheckFile(filepath.Join("testdata", n+"-bad.jsonl"))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		ok, err := CheckFile(filepath.Join("testdata", n+"-ok.jsonl"))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if bad.Count(n) == 0 || ok.Count(n) != 0 {
			t.Errorf("%s: %d in the bad fixture, %d in the good one", n, bad.Count(n), ok.Count(n))
		}
	}
}

// fixtures returns the testdata files matching pattern, failing when there are none (a glob
// that matches nothing would make a test pass vacuously).
func fixtures(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/%s: %v", pattern, err)
	}
	return files
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
	for _, f := range fixtures(t, "*.jsonl") {
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
