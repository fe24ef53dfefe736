package loadgen

import (
	"math"
	"slices"
	"testing"
	"time"
)

// fakeClock is a manual clock for pacer tests.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Sleep(d time.Duration) { c.now = c.now.Add(d) }

func TestPacerRateAccuracy(t *testing.T) {
	for _, rate := range []float64{1, 7, 100, 1000, 33333, 1e6} {
		clk := &fakeClock{now: time.Unix(1000, 0)}
		start := clk.now
		p := NewPacer(start, rate)
		sent := 0
		for clk.now.Sub(start) < 10*time.Second {
			_, wait := p.Next(clk.now)
			clk.Sleep(wait)
			if clk.now.Sub(start) >= 10*time.Second {
				break
			}
			sent++
		}
		want := rate * 10
		if math.Abs(float64(sent)-want) > math.Max(1, want*0.001) {
			t.Errorf("rate %v: %d sends in 10s, want %v", rate, sent, want)
		}
	}
}

func TestPacerCoordinatedOmission(t *testing.T) {
	// 1000 sends/s; send number 100 stalls for one second. Every send scheduled during the
	// stall must show the wait in its latency (measured from its intended time), and the
	// schedule must not shift: send 2000 is still intended at 2s.
	clk := &fakeClock{now: time.Unix(0, 0)}
	start := clk.now
	p := NewPacer(start, 1000)
	var latencies, delays []time.Duration
	var intended2000 time.Time
	for i := 0; i < 3000; i++ {
		intended, wait := p.Next(clk.now)
		clk.Sleep(wait)
		if i == 2000 {
			intended2000 = intended
		}
		actual := clk.now
		service := 100 * time.Microsecond
		if i == 100 {
			service = time.Second
		}
		clk.Sleep(service)
		latencies = append(latencies, clk.now.Sub(intended))
		delays = append(delays, actual.Sub(intended))
	}
	if got := intended2000.Sub(start); got != 2*time.Second {
		t.Errorf("send 2000 intended at %v, want 2s: the stall shifted the schedule", got)
	}
	if latencies[100] < time.Second {
		t.Errorf("stalled send latency %v, want ≥ 1s", latencies[100])
	}
	// Sends 101..1099 were due during the stall: their latency falls linearly from ~1s.
	if latencies[101] < 990*time.Millisecond || latencies[600] < 490*time.Millisecond {
		t.Errorf("sends behind the stall: latency[101]=%v latency[600]=%v; coordinated omission", latencies[101], latencies[600])
	}
	if delays[101] < 990*time.Millisecond {
		t.Errorf("publish delay of send 101 = %v, want ≈ 1s", delays[101])
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	if p99 := sorted[len(sorted)*99/100]; p99 < 900*time.Millisecond {
		t.Errorf("p99 latency %v hides the stall (want ≥ 900ms)", p99)
	}
	if latencies[2500] > time.Millisecond || delays[2500] != 0 {
		t.Errorf("after catching up: latency %v delay %v", latencies[2500], delays[2500])
	}
}

func TestPacerSetRateDoesNotReplayBacklog(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	p := NewPacer(clk.now, 100)
	p.Next(clk.now)
	clk.Sleep(5 * time.Second) // fell 500 sends behind
	p.SetRate(clk.now, 10)
	i1, w1 := p.Next(clk.now)
	i2, _ := p.Next(clk.now)
	if !i1.Equal(clk.now) || w1 != 0 || i2.Sub(i1) != 100*time.Millisecond {
		t.Errorf("after SetRate: first %v wait %v, spacing %v", i1.Sub(clk.now), w1, i2.Sub(i1))
	}
	if p.Rate() != 10 {
		t.Errorf("Rate() = %v", p.Rate())
	}
}

func TestPacerUnpaced(t *testing.T) {
	now := time.Unix(5, 0)
	p := NewPacer(now, 0)
	for range 3 {
		if in, w := p.Next(now); !in.Equal(now) || w != 0 {
			t.Fatalf("unpaced: intended %v wait %v", in, w)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	b := make([]byte, 100)
	h := Header{RunID: 0xdeadbeefcafe, ProducerID: 7, Sequence: 123456789, IntendedUnixNano: 1_700_000_000_123_456_789}
	h.Put(b)
	got, err := DecodeHeader(b)
	if err != nil || got != h {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if h.Value() != "7-123456789" {
		t.Errorf("Value() = %q", h.Value())
	}
	if _, err := DecodeHeader([]byte("hello world, this is not a kchaos record")); err == nil {
		t.Error("foreign value decoded")
	}
	if _, err := DecodeHeader(b[:10]); err == nil {
		t.Error("short value decoded")
	}
}
