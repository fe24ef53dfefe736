package loadgen

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kchaos/kchaos/rundir"
)

// seriesLoop samples counters and histograms once per second into the series, the interval
// logs and the status line.
type seriesLoop struct {
	r         *runner
	drv       Driver
	col       *collector
	producers []*producerTask
	groups    []*positions
	topics    []string
	series    []rundir.Second
	tty       bool
}

func newSeriesLoop(r *runner, drv Driver, col *collector, producers []*producerTask, groups []*positions, topics []string) *seriesLoop {
	s := &seriesLoop{r: r, drv: drv, col: col, producers: producers, groups: groups, topics: topics}
	if f, ok := r.opts.Status.(*os.File); ok {
		fi, err := f.Stat()
		s.tty = err == nil && fi.Mode()&os.ModeCharDevice != 0
	}
	return s
}

// loop samples once a second from start until ctx ends, and once more after it has ended.
func (s *seriesLoop) loop(ctx context.Context, start time.Time) {
	if d := time.Until(start); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := start
	var prev rundir.Second
	var prevErrs map[string]int64
	var prevBytes int64
	for {
		select {
		case <-ctx.Done():
			// The last sample comes after the end, whatever a tick's sample was doing when
			// it came: a producer's last publish delays (recorded as it stops) may have
			// missed the tick's flush, and a loop that ended on the tick lost them.
			s.sample(last, time.Now(), &prev, &prevErrs, &prevBytes)
			if s.tty {
				fmt.Fprintln(s.r.opts.Status)
			}
			return
		case now := <-t.C:
			s.sample(last, now, &prev, &prevErrs, &prevBytes)
			last = now
		}
	}
}

// sample appends one point covering (from, to].
func (s *seriesLoop) sample(from, to time.Time, prev *rundir.Second, prevErrs *map[string]int64, prevBytes *int64) {
	r := s.r
	secs := to.Sub(from).Seconds()
	if secs <= 0 {
		// No point for an empty interval, but its samples still go into the totals.
		s.col.flush(from, to)
		return
	}
	cur := rundir.Second{
		Sent: r.counts.sent.Load(), Acked: r.counts.acked.Load(), Failed: r.counts.failed.Load(),
		Indeterminate: r.counts.indeterminate.Load(), Consumed: r.counts.polled.Load(),
	}
	bytes := r.counts.ackedBytes.Load()
	errs := r.counts.errorsSnapshot()
	lat := s.col.flush(from, to)
	pt := rundir.Second{
		T:    to.Sub(s.col.start).Seconds(),
		Sent: cur.Sent - prev.Sent, Acked: cur.Acked - prev.Acked, Failed: cur.Failed - prev.Failed,
		Indeterminate: cur.Indeterminate - prev.Indeterminate, Consumed: cur.Consumed - prev.Consumed,
		P50Micros: lat.ValueAtQuantile(50), P99Micros: lat.ValueAtQuantile(99),
		Errors: diffErrors(errs, *prevErrs),
	}
	pt.MsgsPerSec = float64(pt.Acked) / secs
	pt.MBPerSec = float64(bytes-*prevBytes) / secs / 1e6
	for _, p := range s.producers {
		pt.TargetRate += float64(p.target.Load())
	}
	pt.Lag = s.lag()
	*prev, *prevErrs, *prevBytes = cur, errs, bytes
	s.series = append(s.series, pt)
	s.status(pt, secs)
}

// lag is the largest lag over the groups, summed over their topic's partitions.
func (s *seriesLoop) lag() int64 {
	if len(s.groups) == 0 {
		return 0
	}
	perTopic := len(s.groups) / len(s.topics)
	var worst int64
	for ti, t := range s.topics {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		end, err := s.drv.EndOffsets(ctx, t, false)
		cancel()
		if err != nil {
			return -1
		}
		for _, g := range s.groups[ti*perTopic : (ti+1)*perTopic] {
			worst = max(worst, g.lag(end))
		}
	}
	return worst
}

// status prints one point of secs seconds as the live status line: acknowledged records and
// MB per second, or with acks=0, which acknowledges nothing, sent ones.
func (s *seriesLoop) status(pt rundir.Second, secs float64) {
	errs := int64(0)
	for _, n := range pt.Errors {
		errs += n
	}
	rate, mb, what := pt.MsgsPerSec, pt.MBPerSec, "acked"
	if s.r.cfg.Producer.Acks == "0" {
		rate, what = float64(pt.Sent)/secs, "sent"
		mb = rate * float64(s.r.cfg.MessageSize) / 1e6
	}
	line := fmt.Sprintf("[%5.0fs] %8.0f msg/s %s %7.2f MB/s  p99 %8.2fms  errors %d  lag %d",
		pt.T, rate, what, mb, float64(pt.P99Micros)/1000, errs, pt.Lag)
	if s.tty {
		fmt.Fprintf(s.r.opts.Status, "\r%s\x1b[K", line)
		return
	}
	fmt.Fprintln(s.r.opts.Status, line)
}
