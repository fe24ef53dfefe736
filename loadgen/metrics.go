package loadgen

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms record in microseconds, from 1µs to 10 minutes, 3 significant digits.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// recordMicros records d in h, clamped to the histogram's range.
func recordMicros(h *hdrhistogram.Histogram, d time.Duration) { _ = h.RecordValue(histMicros(d)) }

// histMicros is d in microseconds, clamped to the histograms' range.
func histMicros(d time.Duration) int64 {
	return min(max(int64(d/time.Microsecond), histMin), histMax)
}

// Latency kinds.
const (
	kindPublishLatency = iota
	kindPublishDelay
	kindEndToEnd
	numKinds
)

var kindNames = [numKinds]string{"publish-latency", "publish-delay", "end-to-end"}

// recorder is one goroutine's interval histograms; the collector swaps them out each second.
type recorder struct {
	_  cacheLinePad
	mu sync.Mutex // guards h
	h  [numKinds]*hdrhistogram.Histogram
	_  cacheLinePad
}

func newRecorder() *recorder {
	r := &recorder{}
	for k := range r.h {
		r.h[k] = newHist()
	}
	return r
}

func (r *recorder) record(kind int, d time.Duration) {
	r.mu.Lock()
	recordMicros(r.h[kind], d)
	r.mu.Unlock()
}

// recordN records n values of d at once.
func (r *recorder) recordN(kind int, d time.Duration, n int64) {
	r.mu.Lock()
	_ = r.h[kind].RecordValues(histMicros(d), n)
	r.mu.Unlock()
}

// counters are the run's totals, updated atomically by producers and consumers. Each group
// sits on its own cache lines, apart from the others' and from the fields before the
// counters in runner (which outcomes read): producer goroutines write sent, client
// goroutines the outcomes, consumers the rest; sharing a line would move it between cores
// on every record.
type counters struct {
	_                                        cacheLinePad
	sent                                     atomic.Int64
	_                                        cacheLinePad
	acked, failed, indeterminate, ackedBytes atomic.Int64
	_                                        cacheLinePad
	polled, processed, commits, pollErrors   atomic.Int64
	_                                        cacheLinePad

	mu     sync.Mutex // guards errors
	errors map[string]int64
}

func (c *counters) addError(name string) {
	c.mu.Lock()
	if c.errors == nil {
		c.errors = map[string]int64{}
	}
	c.errors[name]++
	c.mu.Unlock()
}

func (c *counters) errorsSnapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.errors)
}

// collector merges recorders once per interval into totals, series and interval logs.
type collector struct {
	mu        sync.Mutex // guards recorders
	recorders []*recorder

	total    [numKinds]*hdrhistogram.Histogram
	interval [numKinds]*hdrhistogram.Histogram
	logs     [numKinds]*hdrhistogram.HistogramLogWriter
	files    []*os.File
	start    time.Time
	// measureFrom excludes samples recorded before the end of warmup from totals.
	measureFrom time.Time
}

func newCollector(start, measureFrom time.Time, outDir string) (*collector, error) {
	c := &collector{start: start, measureFrom: measureFrom}
	for k := range c.total {
		c.total[k] = newHist()
		c.interval[k] = newHist()
	}
	if outDir == "" {
		return c, nil
	}
	for k := range c.logs {
		f, err := os.Create(filepath.Join(outDir, kindNames[k]+".hlog"))
		if err != nil {
			c.close()
			return nil, fmt.Errorf("loadgen: interval log: %w", err)
		}
		c.files = append(c.files, f)
		lw := hdrhistogram.NewHistogramLogWriter(f)
		_ = lw.OutputComment("[kchaos " + kindNames[k] + ", microseconds]")
		_ = lw.OutputLogFormatVersion()
		_ = lw.OutputStartTime(start.UnixMilli())
		lw.SetBaseTime(start.UnixMilli())
		_ = lw.OutputLegend()
		c.logs[k] = lw
	}
	return c, nil
}

func (c *collector) add(r *recorder) {
	c.mu.Lock()
	c.recorders = append(c.recorders, r)
	c.mu.Unlock()
}

// flush merges every recorder's interval histograms, writes one interval to the logs and
// returns the publish latency histogram of the interval.
func (c *collector) flush(from, to time.Time) *hdrhistogram.Histogram {
	for k := range c.interval {
		c.interval[k].Reset()
	}
	c.mu.Lock()
	rs := c.recorders
	c.mu.Unlock()
	for _, r := range rs {
		r.mu.Lock()
		for k := range r.h {
			c.interval[k].Merge(r.h[k])
			r.h[k].Reset()
		}
		r.mu.Unlock()
	}
	for k := range c.interval {
		if !to.Before(c.measureFrom) {
			c.total[k].Merge(c.interval[k])
		}
		if c.logs[k] != nil {
			h := c.interval[k]
			h.SetStartTimeMs(from.UnixMilli())
			h.SetEndTimeMs(to.UnixMilli())
			_ = c.logs[k].OutputIntervalHistogram(h)
		}
	}
	return c.interval[kindPublishLatency]
}

func (c *collector) close() error {
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// diffErrors returns cur minus prev, without zero entries.
func diffErrors(cur, prev map[string]int64) map[string]int64 {
	var out map[string]int64
	keys := make([]string, 0, len(cur))
	for k := range cur {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if d := cur[k] - prev[k]; d != 0 {
			if out == nil {
				out = map[string]int64{}
			}
			out[k] = d
		}
	}
	return out
}
