package loadgen

import (
	"math"
	"time"
)

// RateSearch parameters. A step is one control interval (the producer uses 250ms).
const (
	// searchRampMax is the largest rise per step once the search has settled: 5%.
	searchRampMax = 0.05
	// searchRampMin is the smallest rise per step: 0.5%.
	searchRampMin = 0.005
	// searchBaseSteps is the age in steps at which the base is measured again (40: 10s).
	searchBaseSteps = 40
	// searchRemeasureSteps bounds the steps spent at half the rate to measure the base again,
	// beyond the first (8: 2s).
	searchRemeasureSteps = 8
	// searchHoldSteps is how many steps a queue may stand before the base is measured
	// again (4: 1s).
	searchHoldSteps = 4
	// searchHeadroom is the time in flight allowed above twice the lowest: 10ms.
	searchHeadroom = 0.010
	// searchDrain is the time over which a queue beyond the allowed one is drained: 1s.
	searchDrain = 1.0
	// searchCapacitySteps is how many steps' acknowledged rates the capacity is the highest
	// of (4: 1s); at most searchBestSteps.
	searchCapacitySteps = 4
	// searchBestSteps is the window over which acknowledged rates are averaged for Best (8).
	searchBestSteps = 8
)

// RateSearch finds the highest rate a producer sustains (OMB's producerRate 0). A rate is
// sustainable when the producer sends what the schedule asks (the client does not push
// back) and records do not queue: by Little's law, records in flight divided by the
// acknowledged rate is the time a record spends in flight, and it may not exceed twice the
// pipeline's own (its lowest, the base) plus 10ms.
//
// The search starts in slow start, doubling the rate each step until the first shortfall.
// After that it probes upwards by a rise that doubles with each sustainable step, from 0.5%
// to at most 5%. When the client pushes back, or records queue beyond the allowed time and
// the queue grew in the step, it halves the rise and drops to the capacity it measured (the
// highest acknowledged rate of the last 4 steps), less what drains the excess queue in a
// second, but never below half the rate. A queue beyond the allowed time that did not grow
// holds the rate: the cluster may have become slower to acknowledge (a leader moved, a
// replica lags) rather than slower to absorb records.
//
// The base is measured again when it is 10s old (as BBR measures its round trip again):
// one step at half the rate drains any queue, and the time in flight at its end is the new
// base. The queue the search keeps just above the pipeline's own keeps the cluster busy, so
// the rate it settles around is the cluster's capacity rather than a safe fraction of it.
type RateSearch struct {
	rate, ramp float64
	settled    bool
	// base is the pipeline's own time in flight (seconds), baseAge the steps since it was
	// measured; remeasure is the rate to resume after a step that measures it again.
	base        float64
	baseAge     int
	remeasure   float64
	remeasuring int // steps spent measuring the base again
	// acked holds the last searchBestSteps acknowledged rates; best is the highest mean.
	acked       [searchBestSteps]float64
	steps       int
	best        float64
	outstanding float64 // records in flight at the end of the last step
	queued      bool    // the last step queued records beyond the allowed time
	holds       int     // steps the rate has been held
}

// NewRateSearch starts a search at initial sends per second (default 1000 when ≤ 0).
func NewRateSearch(initial float64) *RateSearch {
	if initial <= 0 {
		initial = 1000
	}
	return &RateSearch{rate: initial, ramp: 1, base: math.Inf(1)}
}

// Rate returns the rate to run at now.
func (s *RateSearch) Rate() float64 { return s.rate }

// Best returns the highest acknowledged rate sustained over searchBestSteps steps (over all
// steps so far when fewer), in records per second.
func (s *RateSearch) Best() float64 { return s.best }

// Step reports one interval: records sent and acknowledged during it, and records sent but
// not yet acknowledged at its end. It returns the rate for the next interval.
func (s *RateSearch) Step(interval time.Duration, sent, acked, outstanding int64) float64 {
	secs := interval.Seconds()
	if secs <= 0 {
		return s.rate
	}
	sentRate, ackedRate := float64(sent)/secs, float64(acked)/secs
	out, prev := float64(outstanding), s.outstanding
	s.outstanding = out
	grew := out > prev
	s.record(ackedRate)
	inFlight := math.Inf(1)
	if ackedRate > 0 {
		inFlight = out / ackedRate
	}
	switch {
	case s.remeasure > 0 && s.remeasuring < searchRemeasureSteps && (out < 0.9*prev || ackedRate < 0.9*sentRate):
		// Measuring the base: the queue is still draining, or grew even at half the rate
		// (the cluster stalled).
		s.remeasuring++
		return s.rate
	case s.remeasure > 0:
		s.base, s.baseAge = inFlight, 0
		s.rate, s.remeasure, s.remeasuring = s.remeasure, 0, 0
		return s.rate
	case inFlight <= s.base:
		s.base, s.baseAge = inFlight, 0
	default:
		s.baseAge++
	}
	// Records beyond those the pipeline holds when nothing queues.
	excess := out - ackedRate*(2*s.base+searchHeadroom)
	behind := sentRate < 0.9*s.rate
	wasQueued := s.queued
	s.queued = excess > 0 && grew
	hold := !behind && excess > 0 && !(s.queued && wasQueued)
	if hold {
		s.holds++
	} else {
		s.holds = 0
	}
	if s.settled && (s.baseAge >= searchBaseSteps || s.holds > searchHoldSteps) {
		s.remeasure, s.holds = s.rate, 0
		s.rate /= 2
		return s.rate
	}
	if hold {
		return s.rate
	}
	if !behind && excess <= 0 {
		s.rate *= 1 + s.ramp
		limit := 1.0 // slow start: doubling
		if s.settled {
			limit = searchRampMax
		}
		s.ramp = math.Min(2*s.ramp, limit)
		return s.rate
	}
	if !s.settled {
		s.settled, s.ramp = true, searchRampMax
	}
	s.ramp = math.Max(searchRampMin, s.ramp/2)
	next := math.Min(s.rate, s.capacity()) - math.Max(0, excess)/searchDrain
	s.rate = math.Max(1, math.Max(next, s.rate/2))
	return s.rate
}

// record keeps the step's acknowledged rate and updates the best sustained one.
func (s *RateSearch) record(ackedRate float64) {
	s.acked[s.steps%searchBestSteps] = ackedRate
	s.steps++
	n := min(s.steps, searchBestSteps)
	var sum float64
	for i := range n {
		sum += s.acked[i]
	}
	s.best = math.Max(s.best, sum/float64(n))
}

// capacity returns the highest acknowledged rate of the last searchCapacitySteps steps.
func (s *RateSearch) capacity() float64 {
	var c float64
	for i := range min(s.steps, searchCapacitySteps) {
		c = math.Max(c, s.acked[(s.steps-1-i)%searchBestSteps])
	}
	return c
}
