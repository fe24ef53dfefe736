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
