package rundir

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TestResultFileKeys pins result.json's keys: recorded run directories and reports read
// them by these names.
func TestResultFileKeys(t *testing.T) {
	h := hdrhistogram.New(1, 60_000_000, 3)
	for v := int64(1); v <= 1000; v++ {
		h.RecordValue(v)
	}
	res := Result{RunID: "r", Sent: 3, Acked: 2, Elapsed: 2 * time.Second, PublishLatency: h,
		Percentiles: map[string]Percentiles{"publish-latency": Summarize(h)}, Series: []Second{{T: 1}}}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, key := range []string{`"run_id":"r"`, `"sent":3`, `"acked":2`, `"elapsed_ns":2000000000`,
		`"publish-latency":{"count":1000,"min_us":1,`, `"p50_us":500,`, `"p99_us":990,`, `"max_us":1000}`} {
		if !strings.Contains(got, key) {
			t.Errorf("result.json lacks %s:\n%s", key, got)
		}
	}
	if strings.Contains(got, "series") || strings.Contains(got, "PublishLatency") {
		t.Errorf("result.json carries the in-memory histograms or series:\n%s", got)
	}
}
