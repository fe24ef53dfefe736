package reports

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fixtureConfigs are the configuration folders of testdata/run, in run order.
var fixtureConfigs = []string{"acks=0", "acks=1", "acks=all"}

// copyFixture copies testdata/run into dst.
func copyFixture(dst string) error {
	return filepath.WalkDir("testdata/run", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/run", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// fixture is the report generated once from a copy of testdata/run, shared by the tests
// that only read it.
var fixture struct {
	once sync.Once
	dir  string
	run  *Run
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// generated returns the run directory of the generated fixture report.
func generated(t *testing.T) (string, *Run) {
	t.Helper()
	fixture.once.Do(func() {
		if fixture.dir, fixture.err = os.MkdirTemp("", "kchaos-reports-"); fixture.err != nil {
			return
		}
		if fixture.err = copyFixture(fixture.dir); fixture.err != nil {
			return
		}
		start := time.Now()
		fixture.run, fixture.err = Generate(fixture.dir, Options{Version: "test"})
		t.Logf("report generation of the fixture: %s", time.Since(start).Round(time.Millisecond))
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.dir, fixture.run
}

func TestGenerateWritesEveryPlotAndTheyDecode(t *testing.T) {
	dir, _ := generated(t)
	var charts []string
	for _, n := range []string{"throughput", "latency", "loss", "latency-distribution"} {
		charts = append(charts, filepath.Join(dir, PlotsDir, n))
	}
	for _, c := range fixtureConfigs {
		for _, n := range []string{"timeline", "resources"} {
			charts = append(charts, filepath.Join(dir, c, PlotsDir, n))
		}
	}
	for _, c := range charts {
		f, err := os.Open(c + ".png")
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s.png: %v", c, err)
		} else if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 150 {
			t.Errorf("%s.png is %dx%d, want a readable chart", c, b.Dx(), b.Dy())
		}
		b, err := os.ReadFile(c + ".svg")
		if err != nil {
			t.Error(err)
			continue
		}
		if root, err := parseXML(b); err != nil || root != "svg" {
			t.Errorf("%s.svg: root %q, %v", c, root, err)
		}
	}
}

// parseXML reads the whole document and returns the root element's name.
func parseXML(b []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return root, nil
		}
		if err != nil {
			return root, err
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
}

// validateSummary fails the test when dir's summary.json does not validate against
// summary.schema.json; it returns the compiled schema.
func validateSummary(t *testing.T, dir string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SummarySchema))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("summary.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("summary.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("summary.json does not validate: %v", err)
	}
	return sch
}

func TestSummaryValidatesAgainstSchema(t *testing.T) {
	dir, run := generated(t)
	sch := validateSummary(t, dir)
	// The schema must reject what a broken writer would produce.
	bad := map[string]any{"schema_version": 2, "workload": "x", "generated": "not a time", "versions": map[string]any{"kchaos": "x", "go": "y"},
		"configs": []any{}, "claims": []any{}}
	if err := sch.Validate(bad); err == nil {
		t.Error("schema accepted an empty config list and a malformed time")
	}

	var names []string
	for _, cs := range run.Summary.Configs {
		names = append(names, cs.Name)
		if cs.Counts.Sent != 60 || cs.Throughput.MsgsPerSec < 20 || cs.PublishLatency == nil || cs.PublishLatency.P99 <= 0 {
			t.Errorf("%s: sent %d, %.1f msgs/s, publish latency %+v; the fixture sent 60 at 30/s", cs.Name, cs.Counts.Sent, cs.Throughput.MsgsPerSec, cs.PublishLatency)
		}
		if cs.Anomalies["lost"] != 0 || len(cs.Guarantees) == 0 || cs.Params["acks"] == "" {
			t.Errorf("%s: anomalies %v, %d guarantees, params %v", cs.Name, cs.Anomalies, len(cs.Guarantees), cs.Params)
		}
	}
	if strings.Join(names, " ") != strings.Join(fixtureConfigs, " ") {
		t.Errorf("configs %v, want run order %v", names, fixtureConfigs)
	}
}

func TestTextOutputs(t *testing.T) {
	dir, run := generated(t)
	b, err := os.ReadFile(filepath.Join(dir, BenchFile))
	if err != nil {
		t.Fatal(err)
	}
	// benchstat reads "BenchmarkName N value unit [value unit ...]".
	line := regexp.MustCompile(`^BenchmarkKchaos/config=\S+\t1(\t[0-9.]+ [a-zA-Z0-9./-]+)+$`)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("bench.txt has %d lines, want 3:\n%s", len(lines), b)
	}
	for _, l := range lines {
		if !line.MatchString(l) || !strings.Contains(l, " msgs/s\t") || !strings.Contains(l, " p99-ms") {
			t.Errorf("not a benchstat line with msgs/s and p99-ms: %q", l)
		}
	}
	var tbl bytes.Buffer
	if err := WritePerfTable(&tbl, &run.Summary); err != nil {
		t.Fatal(err)
	}
	perf := regexp.MustCompile(`^acks=\S+:\s+60 records sent, [0-9.]+ records/sec \([0-9.]+ MB/sec\), [0-9.]+ ms avg latency, [0-9.]+ ms max latency, [0-9.]+ ms 50th, [0-9.]+ ms 99th, [0-9.]+ ms 99.9th\.`)
	for _, l := range strings.Split(strings.TrimSpace(tbl.String()), "\n") {
		if !perf.MatchString(l) {
			t.Errorf("not a kafka-producer-perf-test line: %q", l)
		}
	}
}

func TestReportHTMLIsSelfContained(t *testing.T) {
	dir, run := generated(t)
	b, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	imgs := regexp.MustCompile(`<img src="([^"]*)"`).FindAllStringSubmatch(page, -1)
	// Four by-config charts, then per configuration its timeline, unseen records and
	// resources.
	if want := 4 + 3*len(fixtureConfigs); len(imgs) != want {
		t.Errorf("%d images, want %d", len(imgs), want)
	}
	for _, m := range imgs {
		if !strings.HasPrefix(m[1], "data:image/png;base64,") {
			t.Errorf("image not embedded: %.60s", m[1])
		}
	}
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(page) {
		t.Error("the page refers to the network")
	}
	for _, want := range []string{"Claims", "acks=0 can lose messages", "Fault timeline", "Full configuration"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, cs := range run.Summary.Configs {
		if !strings.Contains(page, `id="cfg-`+cs.Dir+`"`) {
			t.Errorf("no section for %s", cs.Name)
		}
	}
}

func TestClaimsFromFixture(t *testing.T) {
	_, run := generated(t)
	got := map[int]ClaimResult{}
	for _, c := range run.Summary.Claims {
		got[c.ID] = c
	}
	if len(got) != 17 {
		t.Errorf("%d claims answered, want all 17 of CLAIMS.md", len(got))
	}
	// acks=0 ran without faults and the drain read every record: the predicted loss did not
	// happen, and the report must say so rather than claim it held or was refuted.
	if c := got[1]; c.Status != ClaimUnknown || !strings.Contains(c.Tried, "never showed") || len(c.Configs) != 2 || c.Configs[0] != "acks=0" ||
		c.Unsafe == nil || c.Unsafe.Trials != 1 || c.Pos != "reports/testdata/tiny.yaml:23" {
		t.Errorf("claim 1: %+v", c)
	}
	// Claim 7 takes every configuration, and needs their performance figures, which the
	// fixture did not measure.
	if c := got[7]; c.Status != ClaimUnknown || len(c.Configs) != 3 || !strings.Contains(c.Tried, "performance section") {
		t.Errorf("claim 7: %+v", c)
	}
	if run.Summary.Trials != 1 || run.Summary.Stopped != "all trials ran" {
		t.Errorf("trials %d, stopped %q", run.Summary.Trials, run.Summary.Stopped)
	}
	// No faults ran: claims about leader death are not exercised.
	for _, id := range []int{2, 3, 4, 8, 9} {
		if got[id].Status != ClaimNotExercised {
			t.Errorf("claim %d: %+v, want not exercised", id, got[id])
		}
	}
}
