package reports

import "math"

// Impact is what one fault cost the producers, from the configuration's history.
type Impact struct {
	// Fault is the fault's id in Faults.
	Fault int64 `json:"fault"`
	// Unavailable is the longest time without any acknowledgement that overlapped the fault
	// or the 10s after it ended, in seconds.
	Unavailable float64 `json:"unavailable_s"`
	// Recovery is the time from the fault's start until the acknowledged rate was back to
	// 90% of its rate in the 5s before the fault for two seconds in a row, in seconds; -1 when
	// it never came back before the run ended, 0 when it never dropped.
	Recovery float64 `json:"recovery_s"`
	// MaxLatency is the longest publish latency of the sends invoked while the fault was in
	// force (from invoke to acknowledgement), in ms; 0 when none was acknowledged.
	MaxLatency float64 `json:"max_latency_ms"`
}

// impactHorizon is how long after a fault ends its effects are still looked for, in seconds.
const impactHorizon = 10.0

// faultImpacts computes each fault's Impact from the timeline. acks=0 runs have none: their
// sends are never acknowledged.
func faultImpacts(faults []Fault, tl *Timeline) []Impact {
	var out []Impact
	for _, f := range faults {
		end := f.End
		if f.Open || end < f.Start {
			end = math.Inf(1)
		}
		im := Impact{Fault: f.ID, Recovery: recovery(tl.Points, f.Start)}
		for _, g := range tl.Gaps {
			if g.End > f.Start && g.Start < end+impactHorizon {
				im.Unavailable = math.Max(im.Unavailable, g.End-g.Start)
			}
		}
		for i, p := range tl.Points {
			second := float64(i) // the point covers [i, i+1)
			if second+1 > f.Start && second < end {
				im.MaxLatency = math.Max(im.MaxLatency, p.InvokedMax)
			}
		}
		out = append(out, im)
	}
	return out
}

// recovery returns the seconds from start until the acknowledged rate is back to 90% of the
// mean of the 5 seconds before it for two seconds in a row; 0 when it never dropped below,
// -1 when it never came back.
func recovery(points []Point, start float64) float64 {
	first := int(start) // the second the fault started in
	if first <= 0 || first >= len(points) {
		return 0
	}
	var base float64
	n := 0
	for i := max(0, first-5); i < first; i++ {
		base += float64(points[i].Acked)
		n++
	}
	if n == 0 || base == 0 {
		return 0
	}
	base /= float64(n)
	dropped := false
	for i := first; i+1 < len(points); i++ {
		low := float64(points[i].Acked) < 0.9*base
		if low {
			dropped = true
			continue
		}
		if dropped && float64(points[i+1].Acked) >= 0.9*base {
			return math.Max(0, float64(i)-start)
		}
	}
	if !dropped {
		return 0
	}
	return -1
}
