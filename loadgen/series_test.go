package loadgen

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchaos/kchaos/rundir"
)

// stallWriter blocks its first Write until release is closed, after telling entered.
type stallWriter struct {
	once             sync.Once
	entered, release chan struct{}
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.entered)
		<-w.release
	})
	return len(p), nil
}

// TestSeriesKeepsSamplesRecordedDuringLastTick stops the series loop while a tick's sample is
// still running, after its flush: publish delays a producer recorded then (as it does when it
// stops) must still reach the totals. A loop that returned after that tick lost them, and
// one CI run counted 2% fewer publish delays than sends.
func TestSeriesKeepsSamplesRecordedDuringLastTick(t *testing.T) {
	start := time.Now()
	col, err := newCollector(start, start, "")
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	col.add(rec)
	w := &stallWriter{entered: make(chan struct{}), release: make(chan struct{})}
	r := &runner{opts: Options{Status: w}}
	s := newSeriesLoop(r, nil, col, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.loop(ctx, start) }()

	rec.recordN(kindPublishDelay, 0, 100)
	select {
	case <-w.entered: // the first tick flushed and is writing its status line
	case <-time.After(10 * time.Second):
		t.Fatal("no status line within 10s of a 1s tick")
	}
	rec.recordN(kindPublishDelay, 0, 7)
	cancel()
	close(w.release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("series loop did not stop within 10s of its context")
	}
	if n := col.total[kindPublishDelay].TotalCount(); n != 107 {
		t.Errorf("totals hold %d publish delays, want 107 (100 before the tick, 7 during its sample)", n)
	}
	// Two: the tick and the end (one more if a second tick came while the test was held up).
	if len(s.series) < 2 {
		t.Errorf("%d points in the series, want the tick's and one after the end", len(s.series))
	}
}

// TestStatusLineRates: the live status line shows acknowledged records per second, and with
// acks=0, which acknowledges nothing, sent records (it showed 0 msg/s for every acks=0 run).
func TestStatusLineRates(t *testing.T) {
	for _, tc := range []struct {
		acks string
		want string
	}{
		{"all", "3000 msg/s acked    3.00 MB/s"},
		{"0", "5000 msg/s sent    5.00 MB/s"},
	} {
		start := time.Now()
		col, err := newCollector(start, start, "")
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		r := &runner{opts: Options{Status: &out}}
		r.cfg.Producer.Acks, r.cfg.MessageSize = tc.acks, 1000
		r.counts.sent.Add(5000)
		if tc.acks != "0" {
			r.counts.acked.Add(3000)
			r.counts.ackedBytes.Add(3000 * 1000)
		}
		s := newSeriesLoop(r, nil, col, nil, nil, nil)
		var prev rundir.Second
		var prevErrs map[string]int64
		var prevBytes int64
		s.sample(start, start.Add(time.Second), &prev, &prevErrs, &prevBytes)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("acks=%s: status line %q, want it to show %q", tc.acks, out.String(), tc.want)
		}
	}
}
