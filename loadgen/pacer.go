package loadgen

import (
	"math"
	"time"
)

// Pacer schedules the intended send times of an open-loop producer at a constant rate. It
// has no clock: callers pass the current time. A send that starts late does not delay the
// ones after it (their intended times stay on the schedule), so latency measured from the
// intended time includes any stall — no coordinated omission (wrk2). A rate of 0 or less
// means unpaced: every send is intended now.
type Pacer struct {
	origin   time.Time
	interval float64 // nanoseconds between sends; 0: unpaced
	n        int64   // sends scheduled since origin
}

// NewPacer returns a Pacer whose first send is intended at start, at rate sends per second.
func NewPacer(start time.Time, rate float64) *Pacer {
	p := &Pacer{origin: start}
	p.setInterval(rate)
	return p
}

func (p *Pacer) setInterval(rate float64) {
	p.interval = 0
	if rate > 0 && !math.IsInf(rate, 1) {
		p.interval = float64(time.Second) / rate
	}
}

// Rate returns the current rate in sends per second (0: unpaced).
func (p *Pacer) Rate() float64 {
	if p.interval == 0 {
		return 0
	}
	return float64(time.Second) / p.interval
}

// Next schedules the next send: its intended time and how long to wait from now before
// sending it (0 when it is due or overdue).
func (p *Pacer) Next(now time.Time) (intended time.Time, wait time.Duration) {
	if p.interval == 0 {
		p.n++
		return now, 0
	}
	intended = p.origin.Add(time.Duration(float64(p.n) * p.interval))
	p.n++
	if d := intended.Sub(now); d > 0 {
		return intended, d
	}
	return intended, 0
}

// SetRate changes the rate for sends scheduled after now. The new schedule starts at the
// later of now and the next intended time, so a backlog from the old rate is not replayed
// at the new one.
func (p *Pacer) SetRate(now time.Time, rate float64) {
	next := now
	if p.interval > 0 {
		if t := p.origin.Add(time.Duration(float64(p.n) * p.interval)); t.After(now) {
			next = t
		}
	}
	p.origin, p.n = next, 0
	p.setInterval(rate)
}

// RateSearch finds the highest rate a producer sustains (OMB's producerRate 0). A rate is
// sustainable when the producer sends what the schedule asks (the client is not pushing
// back) and the records sent but not yet acknowledged do not pile up (more than 100ms worth
// and growing). Each step it is told
// what happened in the last interval; while the rate is sustainable it raises it (doubling
// until the first shortfall, then by 5%), and on a shortfall it drops to just under the
// acknowledged rate it measured, which is what the cluster delivered. Best is the highest
// acknowledged rate seen.
type RateSearch struct {
	rate            float64
	best            float64
	settling        bool
	lastOutstanding int64
}

// NewRateSearch starts a search at initial sends per second (default 1000 when ≤ 0).
func NewRateSearch(initial float64) *RateSearch {
	if initial <= 0 {
		initial = 1000
	}
	return &RateSearch{rate: initial}
}

// Rate returns the rate to run at now.
func (s *RateSearch) Rate() float64 { return s.rate }

// Best returns the highest acknowledged rate measured, in records per second.
func (s *RateSearch) Best() float64 { return s.best }

// Step reports one interval: records sent and acknowledged during it, and records sent but
// not yet acknowledged at its end. It returns the rate for the next interval.
func (s *RateSearch) Step(interval time.Duration, sent, acked, outstanding int64) float64 {
	secs := interval.Seconds()
	if secs <= 0 {
		return s.rate
	}
	sentRate, ackedRate := float64(sent)/secs, float64(acked)/secs
	s.best = math.Max(s.best, ackedRate)
	// Piling up: more than 100ms of records waiting, and more than last time.
	piling := float64(outstanding) > 0.1*s.rate && outstanding > s.lastOutstanding
	s.lastOutstanding = outstanding
	keptUp := sentRate >= 0.85*s.rate && !piling
	switch {
	case keptUp && !s.settling:
		s.rate *= 2
	case keptUp:
		s.rate *= 1.05
	default:
		s.settling = true
		s.rate = math.Max(1, math.Max(ackedRate*0.98, s.best*0.5))
	}
	return s.rate
}
