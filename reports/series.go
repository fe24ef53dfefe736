package reports

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kchaos/kchaos/history"
)

// Point is one second of a configuration's timeline, computed from its history.
type Point struct {
	// T is the end of the second, in seconds since the run started.
	T float64 `json:"t"`
	// Sent counts send invokes in the second; Acked ok sends completed in it; Errors failed
	// or indeterminate sends completed in it.
	Sent   int64 `json:"sent"`
	Acked  int64 `json:"acked"`
	Errors int64 `json:"errors"`
	// PublishP99 is the p99 of (send completion − send invoke) over sends completed in the
	// second, in ms; EndToEndP99 the p99 of (first poll − send invoke) over records first
	// polled in it. NaN when nothing completed.
	PublishP99  float64 `json:"publish_p99_ms"`
	EndToEndP99 float64 `json:"e2e_p99_ms"`
	// InvokedMax is the longest publish latency of the acknowledged sends invoked in the
	// second (however late they completed), in ms; 0 when none.
	InvokedMax float64 `json:"invoked_max_ms"`
	// Lag is the consumer lag the load generator sampled in the second (records); -1 unknown.
	Lag int64 `json:"lag"`
	// MinISR is the smallest ISR size sampled in the second over all partitions; 0 unknown.
	MinISR int `json:"min_isr"`
}

// Marker is an instant worth marking on a timeline (a leader change).
type Marker struct {
	T     float64 `json:"t"`
	Label string  `json:"label"`
}

// Gap is an interval without any acknowledgement, in seconds since the run started.
type Gap struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// minGap is the shortest interval between acknowledgements a Timeline keeps as a Gap.
const minGap = 0.1

// Timeline is what a history says over time: the per-second points, leader changes, the
// intervals without acknowledgements and the whole-run latency histograms (microseconds)
// used when no HdrHistogram log exists.
type Timeline struct {
	Header        *history.Run
	Points        []Point
	LeaderChanges []Marker
	// Gaps are the intervals of at least 100ms between consecutive acknowledgements, while
	// sends were outstanding or being invoked, in order.
	Gaps     []Gap
	Publish  *hdrhistogram.Histogram
	EndToEnd *hdrhistogram.Histogram
	// Errors counts failed and indeterminate sends by error name.
	Errors map[string]int64
}

// newHist records microseconds from 1µs to one hour, 3 significant digits.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 3_600_000_000, 3) }

type tp struct {
	topic string
	part  int32
}

// secondAcc accumulates one second.
type secondAcc struct {
	sent, acked, errors int64
	pub, e2e            *hdrhistogram.Histogram
	minISR              int
	invokedMax          int64 // µs
}

// ReadTimeline reads the history at path and computes its per-second timeline.
func ReadTimeline(path string) (*Timeline, error) {
	f, err := history.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	defer f.Close()
	r := history.NewReader(f, path)
	tl := &Timeline{Publish: newHist(), EndToEnd: newHist(), Errors: map[string]int64{}}
	var secs []*secondAcc
	at := func(t int64) *secondAcc {
		i := max(0, int(t/1e9))
		for len(secs) <= i {
			secs = append(secs, &secondAcc{})
		}
		return secs[i]
	}
	invoked := map[string]int64{}  // value → send invoke time, until its completion
	unpolled := map[string]int64{} // value → send invoke time, until its first poll
	leaders := map[tp]int32{}
	lastAck := int64(-1) // time of the previous acknowledgement, ns
	var e history.Event
	for {
		err := r.Next(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reports: %w", err)
		}
		switch e.F {
		case history.FRun:
			if e.Run != nil {
				run := *e.Run
				tl.Header = &run
			}
		case history.FSend:
			s := at(e.Time)
			if e.Type == history.Invoke {
				s.sent++
				invoked[e.Value] = e.Time
				unpolled[e.Value] = e.Time
				continue
			}
			if e.Type == history.OK {
				s.acked++
				if lastAck >= 0 && float64(e.Time-lastAck)/1e9 >= minGap {
					tl.Gaps = append(tl.Gaps, Gap{Start: float64(lastAck) / 1e9, End: float64(e.Time) / 1e9})
				}
				lastAck = e.Time
			} else {
				s.errors++
				name := e.Error
				if name == "" {
					name = "UNKNOWN"
				}
				tl.Errors[name]++
			}
			if t0, ok := invoked[e.Value]; ok {
				delete(invoked, e.Value)
				if e.Type == history.OK {
					us := max(1, (e.Time-t0)/1e3)
					record(&s.pub, us)
					if inv := at(t0); us > inv.invokedMax {
						inv.invokedMax = us
					}
					_ = tl.Publish.RecordValue(min(us, tl.Publish.HighestTrackableValue()))
				}
			}
		case history.FPoll:
			if e.Type != history.OK {
				continue
			}
			for _, rec := range e.Records {
				t0, ok := unpolled[rec.Value]
				if !ok {
					continue
				}
				delete(unpolled, rec.Value)
				us := max(1, (e.Time-t0)/1e3)
				record(&at(e.Time).e2e, us)
				_ = tl.EndToEnd.RecordValue(min(us, tl.EndToEnd.HighestTrackableValue()))
			}
		case history.FMeta:
			if e.ISR == nil {
				continue
			}
			s := at(e.Time)
			if n := len(e.ISR.ISR); s.minISR == 0 || n < s.minISR {
				s.minISR = n
			}
			k := tp{e.Topic, e.Partition}
			if prev, ok := leaders[k]; ok && prev != e.ISR.Leader {
				tl.LeaderChanges = append(tl.LeaderChanges, Marker{T: float64(e.Time) / 1e9,
					Label: fmt.Sprintf("%s/%d leader %d→%d", e.Topic, e.Partition, prev, e.ISR.Leader)})
			}
			leaders[k] = e.ISR.Leader
		}
	}
	tl.Points = make([]Point, len(secs))
	for i, s := range secs {
		tl.Points[i] = Point{T: float64(i + 1), Sent: s.sent, Acked: s.acked, Errors: s.errors,
			PublishP99: p99ms(s.pub), EndToEndP99: p99ms(s.e2e), Lag: -1, MinISR: s.minISR, InvokedMax: float64(s.invokedMax) / 1e3}
	}
	sort.SliceStable(tl.LeaderChanges, func(i, j int) bool { return tl.LeaderChanges[i].T < tl.LeaderChanges[j].T })
	return tl, nil
}

func record(h **hdrhistogram.Histogram, us int64) {
	if *h == nil {
		*h = newHist()
	}
	_ = (*h).RecordValue(min(us, (*h).HighestTrackableValue()))
}

func p99ms(h *hdrhistogram.Histogram) float64 {
	if h == nil || h.TotalCount() == 0 {
		return math.NaN()
	}
	return float64(h.ValueAtQuantile(99)) / 1e3
}

// readHlog merges every interval of an HdrHistogram interval log; nil when the file is
// missing or empty.
func readHlog(path string) (*hdrhistogram.Histogram, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	defer f.Close()
	lr := hdrhistogram.NewHistogramLogReader(f)
	var total *hdrhistogram.Histogram
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			return nil, fmt.Errorf("reports: %s: %w", path, err)
		}
		if h == nil {
			break
		}
		if total == nil {
			total = newHist()
		}
		total.Merge(h)
	}
	if total == nil || total.TotalCount() == 0 {
		return nil, nil
	}
	return total, nil
}

// latencyOf summarises a microsecond histogram in milliseconds; nil when empty.
func latencyOf(h *hdrhistogram.Histogram) *Latency {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1e3 }
	return &Latency{Count: h.TotalCount(), Mean: h.Mean() / 1e3, P50: ms(h.ValueAtQuantile(50)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}
