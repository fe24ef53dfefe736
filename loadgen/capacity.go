package loadgen

import (
	"math"
	"time"
)

// CapacitySearch parameters. A step is one control interval (the producer uses 250ms).
const (
	// capRateSteps is the window over which the bottleneck rate is the highest acknowledged
	// rate of a step (8: 2s), and Capacity's averaging window.
	capRateSteps = 8
	// capStartupGrowth is the growth of the acknowledged rate per doubling of the window below
	// which the pipe counts as full (BBR's 25%).
	capStartupGrowth = 1.25
	// capStartupRounds is how many doublings in a row may fall short of capStartupGrowth
	// before the startup ends (3).
	capStartupRounds = 3
	// capGain is the window in units of the pipeline's own records in flight (its
	// bandwidth-delay product): 3, so a cluster that gets faster is not held back by the
	// window before the next step sees it.
	capGain = 3
	// capHeadroom is the time of records at the bottleneck rate allowed above capGain
	// pipelines: 20ms, for batching and the client's own jitter.
	capHeadroom = 0.020
	// capProbeSteps is the age in steps at which the pipeline's own time is measured again
	// (40: 10s), and capProbeLen the steps the window is lowered for that (1).
	capProbeSteps = 40
	capProbeLen   = 1
	// capProbeGain is the probe's window in units of the pipeline's records in flight (0.75).
	capProbeGain = 0.75
	// capSlow is how many times the time in flight the window allows a step may take before
	// it counts as slow (1.25), and capSlowSteps how many slow steps in a row start a probe (4).
	capSlow      = 1.25
	capSlowSteps = 4
)

// CapacitySearch finds the highest rate a producer sustains with a bounded queue (OMB's
// producerRate 0). It does not pace: it bounds the records in flight (a window, as TCP does)
// and lets the producer send whenever a record's outcome frees room. The acknowledged rate
// of a closed loop is what the cluster sustains, so stalls of the host or the cluster only
// slow it down for as long as they last; a rate search instead reads a stall as a queue and
// cuts, which left the previous search at 0.6-0.74 of a saturated client.
//
// The window is capGain times the pipeline's bandwidth-delay product — the highest
// acknowledged rate of the last 2s times the pipeline's own time in flight (the lowest
// records-in-flight / acknowledged rate) — plus 20ms at that rate, and never below Floor,
// which lets every partition fill a batch while another is in flight. So at most about two
// pipelines' worth of records (plus 20ms) wait beyond what the cluster is working on: the
// queue is bounded, unlike a saturated client's whole buffer. As BBR does, the search starts
// by doubling the window each step until the acknowledged rate grows by less than 25% three
// times in a row (and, unlike BBR, until the window is twice the steady one), and every 10s
// (or after a second of longer times in flight than the window allows) lowers the window
// below one pipeline for one step, so that the time in flight it measures then (with no
// queue) follows a cluster that became slower. A window never goes below Floor, so
// when Floor alone exceeds the pipeline the queue bound is capGain Floors instead.
//
// It is a pure state machine: Step is given what happened during one interval and returns
// the window for the next; it reads no clock.
type CapacitySearch struct {
	window, floor float64
	startup       bool
	startupBest   float64
	shortRounds   int
	// rates holds the acknowledged rates of the last capRateSteps steps.
	rates [capRateSteps]float64
	steps int
	// own is the pipeline's own time in flight (seconds); ownAge the steps since measured.
	own    float64
	ownAge int
	// probing counts the steps left at a lowered window; probeMin is the lowest time in
	// flight seen while probing.
	probing  int
	probeMin float64
	// slow counts consecutive steps whose time in flight exceeded capSlow times the window's.
	slow int
	best float64
}

// NewCapacitySearch starts a search with a window of initial records (default floor, and at
// least 1) that never goes below floor records.
func NewCapacitySearch(initial, floor float64) *CapacitySearch {
	floor = math.Max(1, floor)
	if initial < floor {
		initial = floor
	}
	return &CapacitySearch{window: initial, floor: floor, startup: true, own: math.Inf(1)}
}

// Window returns the records that may be in flight now.
func (s *CapacitySearch) Window() int64 { return int64(math.Ceil(s.window)) }

// Capacity returns the highest mean acknowledged rate over capRateSteps consecutive steps
// (over all steps so far when fewer), in records per second.
func (s *CapacitySearch) Capacity() float64 { return s.best }

// Queue returns the records the window allows beyond the pipeline's own (its queue bound).
func (s *CapacitySearch) Queue() float64 {
	own := s.bottleneck() * s.own
	if math.IsInf(s.own, 1) {
		return 0
	}
	return math.Max(0, s.window-own)
}

// Step reports one interval: records acknowledged (outcomes received) during it and records
// in flight at its end. It returns the window for the next interval.
func (s *CapacitySearch) Step(interval time.Duration, acked, outstanding int64) int64 {
	secs := interval.Seconds()
	if secs <= 0 {
		return s.Window()
	}
	rate := float64(acked) / secs
	s.record(rate)
	// A step that ends with nothing in flight measured no time in flight: the pipeline was
	// empty at that instant, which says nothing about how long a record takes.
	inFlight := math.Inf(1)
	if rate > 0 && outstanding > 0 {
		inFlight = float64(outstanding) / rate
	}
	if s.probing > 0 {
		s.probeMin = math.Min(s.probeMin, inFlight)
		if s.probing--; s.probing == 0 {
			if !math.IsInf(s.probeMin, 1) {
				s.own = s.probeMin
			}
			s.ownAge = 0
			s.window = s.target()
		}
		return s.Window()
	}
	if inFlight <= s.own {
		s.own, s.ownAge = inFlight, 0
	} else {
		s.ownAge++
	}
	if s.startup {
		btl := s.bottleneck()
		if btl >= capStartupGrowth*s.startupBest {
			s.startupBest, s.shortRounds = btl, 0
		} else {
			s.shortRounds++
		}
		// The startup also goes on until the window is twice the steady one: a client that
		// batches may gain nothing from doubling a small window and then a lot from a larger
		// one (whole requests instead of part-full ones), and a search that stopped below that
		// would settle on the part-full rate.
		if s.shortRounds < capStartupRounds || s.window < 2*s.target() {
			s.window *= 2
			return s.Window()
		}
		s.startup = false
	}
	if outstanding > 0 && inFlight > capSlow*(capGain*s.own+capHeadroom) {
		s.slow++
	} else {
		s.slow = 0
	}
	// Measure the pipeline's own time again when it is old, or when records have spent more
	// than 1.25 times the time in flight that the window allows for a second (the window
	// bounds the queue, so the excess is the cluster's own): it may have become slower to
	// acknowledge rather than
	// to absorb records, and a window sized for the old time would then hold the rate down,
	// the held-down rate shrink the window, and so on. The probe's window is below one
	// pipeline, so no queue is left in what it measures.
	if (s.ownAge >= capProbeSteps || s.slow >= capSlowSteps) && !math.IsInf(s.own, 1) {
		s.slow = 0
		s.probing, s.probeMin = capProbeLen, math.Inf(1)
		s.window = math.Max(s.floor, capProbeGain*s.bottleneck()*s.own)
		return s.Window()
	}
	s.window = s.target()
	return s.Window()
}

// target is the steady window: capGain bandwidth-delay products plus capHeadroom.
func (s *CapacitySearch) target() float64 {
	btl := s.bottleneck()
	if math.IsInf(s.own, 1) || btl == 0 {
		return s.window
	}
	return math.Max(s.floor, btl*(capGain*s.own+capHeadroom))
}

// record keeps a step's acknowledged rate and updates the best sustained mean.
func (s *CapacitySearch) record(rate float64) {
	s.rates[s.steps%capRateSteps] = rate
	s.steps++
	n := min(s.steps, capRateSteps)
	var sum float64
	for i := range n {
		sum += s.rates[i]
	}
	s.best = math.Max(s.best, sum/float64(n))
}

// bottleneck is the highest acknowledged rate of the last capRateSteps steps.
func (s *CapacitySearch) bottleneck() float64 {
	var b float64
	for i := range min(s.steps, capRateSteps) {
		b = math.Max(b, s.rates[i])
	}
	return b
}
