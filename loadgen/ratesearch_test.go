package loadgen

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kchaos/kchaos/internal/testkit"
)

// pipeline simulates a producer's client and cluster for RateSearch: the cluster
// acknowledges at most capacity records/s, a record spends at least latency seconds in
// flight, and the client holds at most buffer records, beyond which sends block.
type pipeline struct {
	capacity, latency, buffer float64
	queue                     float64 // records waiting beyond those in flight
}

// step runs one interval of dt seconds at rate, with the cluster's capacity scaled by
// speed, and returns what RateSearch.Step is told.
func (p *pipeline) step(dt, rate, speed float64) (sent, acked, outstanding float64) {
	c := p.capacity * speed
	inFlight := math.Min(rate, c) * p.latency
	room := math.Max(0, p.buffer-p.queue-inFlight+c*dt)
	sent = math.Min(rate*dt, room)
	acked = math.Min(p.queue+sent, c*dt)
	p.queue += sent - acked
	return sent, acked, p.queue + inFlight
}

// searchRun drives a search against a pipeline for steps steps of 250ms. stall is the
// chance that a step's cluster runs at 30% speed (a host pause); at(i) may change the
// pipeline before step i. It returns the acknowledged rate and the queue (in seconds of
// capacity) of each step.
func searchRun(s *RateSearch, p *pipeline, steps int, stall float64, rng *rand.Rand, at func(int, *pipeline)) (acked, queued []float64) {
	const dt = 0.25
	for i := range steps {
		if at != nil {
			at(i, p)
		}
		speed := 1.0
		if stall > 0 && rng.Float64() < stall {
			speed = 0.3
		}
		sent, a, out := p.step(dt, s.Rate(), speed)
		s.Step(250*time.Millisecond, int64(sent), int64(a), int64(out))
		acked = append(acked, a/dt)
		queued = append(queued, p.queue/p.capacity)
	}
	return acked, queued
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func TestRateSearchFindsCapacity(t *testing.T) {
	for _, capacity := range []float64{5000, 80000, 350000} {
		s := NewRateSearch(1000)
		p := &pipeline{capacity: capacity, latency: 0.005, buffer: 65536}
		acked, queued := searchRun(s, p, 240, 0, nil, nil)
		// After a 10s warmup the search keeps the cluster busy with a short queue: the
		// allowed 10ms above twice the pipeline's 5ms.
		if got := mean(acked[40:]); got < 0.95*capacity {
			t.Errorf("capacity %v: acknowledged %.0f/s, want ≥ 95%%", capacity, got)
		}
		if q := mean(queued[40:]); q > 0.02 {
			t.Errorf("capacity %v: mean queue %.1fms, want ≤ 20ms", capacity, q*1000)
		}
		if b := s.Best(); b < 0.95*capacity || b > 1.001*capacity {
			t.Errorf("capacity %v: best %.0f", capacity, b)
		}
	}
}

func TestRateSearchRidesOutStalls(t *testing.T) {
	// One step in 20 the cluster runs at 30% speed (a host pause, a GC). Averaged over 20
	// seeded runs, the search still keeps the cluster busy and its queue short.
	seed := testkit.Seed(t)
	const stall, runs = 0.05, 20
	for _, capacity := range []float64{5000, 80000, 350000} {
		var ratio, queue float64
		for i := range runs {
			s := NewRateSearch(1000)
			p := &pipeline{capacity: capacity, latency: 0.005, buffer: 65536}
			acked, queued := searchRun(s, p, 240, stall, rand.New(rand.NewPCG(seed, uint64(i))), nil)
			ratio += mean(acked[40:]) / (capacity * (1 - 0.7*stall)) / runs
			queue += mean(queued[40:]) / runs
		}
		if ratio < 0.93 {
			t.Errorf("capacity %v: acknowledged %.3f of what stalls leave, want ≥ 0.93", capacity, ratio)
		}
		if queue > 0.08 {
			t.Errorf("capacity %v: mean queue %.0fms, want ≤ 80ms", capacity, queue*1000)
		}
	}
}

func TestRateSearchFollowsCapacity(t *testing.T) {
	s := NewRateSearch(1000)
	p := &pipeline{capacity: 200000, latency: 0.005, buffer: 65536}
	acked, queued := searchRun(s, p, 280, 0, nil, func(i int, p *pipeline) {
		switch i {
		case 100: // 25s: the cluster halves
			p.capacity = 100000
		case 180: // 45s: and recovers
			p.capacity = 200000
		}
	})
	if m := mean(acked[104:180]); m < 0.95*100000 {
		t.Errorf("after the drop: acknowledged %.0f/s, want ≥ 95000", m)
	}
	if q := queued[112]; q > 0.02 {
		t.Errorf("3s after the drop: queue %.0fms, want ≤ 20ms", q*1000)
	}
	if m := mean(acked[200:280]); m < 0.95*200000 {
		t.Errorf("5s after the recovery: acknowledged %.0f/s, want ≥ 190000", m)
	}
}

func TestRateSearchHoldsWhenLatencyRises(t *testing.T) {
	// From 25s on the cluster takes 50ms instead of 5ms to acknowledge (a replica lags) at
	// the same capacity: the search must not mistake that for a queue and back off.
	s := NewRateSearch(1000)
	p := &pipeline{capacity: 200000, latency: 0.005, buffer: 65536}
	acked, queued := searchRun(s, p, 240, 0, nil, func(i int, p *pipeline) {
		if i == 100 {
			p.latency = 0.05
		}
	})
	if m := mean(acked[100:240]); m < 0.93*200000 {
		t.Errorf("after latency rose: acknowledged %.0f/s, want ≥ 186000", m)
	}
	// It allows twice the new 50ms in flight, plus 10ms: a queue of up to 60ms.
	if q := mean(queued[100:240]); q > 0.07 {
		t.Errorf("after latency rose: mean queue %.0fms, want ≤ 70ms", q*1000)
	}
}
