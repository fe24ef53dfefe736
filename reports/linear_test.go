package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/checker"
)

// TestConfigPageShowsLinearizabilityByPartition: a configuration whose verdict.json has an
// illegal, an unknown and an ok partition and an informational anomaly gets, on its page, a
// row per partition with its verdict and reason, the illegal one linking its visualisation
// (found by name in the configuration's linearizability folder, wherever verdict.json said
// it was written), and the informational anomaly labelled with its reason, apart from the
// anomalies that judge; summary.json carries the same and validates.
func TestConfigPageShowsLinearizabilityByPartition(t *testing.T) {
	dir := t.TempDir()
	if err := copyFixture(dir); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "acks=1")
	vpath := filepath.Join(cfg, VerdictFile)
	var v checker.Result
	if ok, err := readJSON(vpath, &v); !ok || err != nil {
		t.Fatalf("read %s: %v", vpath, err)
	}
	topic := v.Linearizable.Partitions[0].Topic
	vis := "linearizability-" + topic + "-0.html"
	if err := os.MkdirAll(filepath.Join(cfg, "linearizability"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "linearizability", vis), []byte("<html></html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	v.Linearizable = &checker.LinearResult{Result: checker.LinearIllegal, Illegal: []string{topic + "/0"}, Unknown: []string{topic + "/2"},
		Partitions: []checker.LinearPartition{
			{Topic: topic, Partition: 0, Ops: 40, Windows: 1, Result: checker.LinearIllegal, Elapsed: 3 * time.Millisecond, Offsets: []int64{0, 19},
				Reason: "window 1 of 1 (40 operations) has no linearization", Visualization: "/where/kchaos/check/ran/acks=1/linearizability/" + vis},
			{Topic: topic, Partition: 1, Ops: 41, Windows: 1, Result: checker.LinearOK, Elapsed: time.Millisecond},
			{Topic: topic, Partition: 2, Ops: 9000, Windows: 3, Result: checker.LinearUnknown, Elapsed: 30 * time.Second, Offsets: []int64{1000, 2999},
				Reason: "porcupine used up the 30s budget in window 2 of 3 (4100 operations)"},
		}}
	v.Anomalies[checker.IntSendSkip] = &checker.Anomaly{Name: checker.IntSendSkip, Count: 3, Informational: checker.Informational[checker.IntSendSkip]}
	b, err := json.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vpath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := Generate(dir, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	validateSummary(t, dir)
	cs := run.Summary.Config("acks=1")
	if len(cs.LinearPartitions) != 3 || cs.LinearPartitions[0].Visualization != "acks=1/linearizability/"+vis || cs.Informational[checker.IntSendSkip] == "" {
		t.Fatalf("summary: partitions %+v, informational %v", cs.LinearPartitions, cs.Informational)
	}
	page, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	section := string(page)
	section = section[strings.Index(section, `id="cfg-acks=1"`):]
	section = section[:strings.Index(section, `id="cfg-acks=all"`)]
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`<td>` + regexp.QuoteMeta(topic) + `/0</td><td class="illegal">illegal</td>.*has no linearization</td><td><a href="acks=1/linearizability/` + regexp.QuoteMeta(vis) + `">`),
		regexp.MustCompile(`<td>` + regexp.QuoteMeta(topic) + `/1</td><td class="ok">ok</td>`),
		regexp.MustCompile(`<td>` + regexp.QuoteMeta(topic) + `/2</td><td class="unknown">unknown</td>.*<td>1000–2999</td><td>porcupine used up the 30s budget`),
		regexp.MustCompile(`<td>int-send-skip</td><td class="num">3</td><td>informational, judges nothing: Kafka&#39;s transactions`),
	} {
		if !want.MatchString(section) {
			t.Errorf("the page of acks=1 lacks %s", want)
		}
	}
	if !regexp.MustCompile(`informational: int-send-skip 3`).Match(page) {
		t.Errorf("the summary table does not set int-send-skip apart as informational")
	}
}
