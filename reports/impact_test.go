package reports

import "testing"

func TestFaultImpacts(t *testing.T) {
	// 1000 acknowledgements a second, nothing in seconds 5 and 6 (a leader killed at 4.5s
	// for 1s), half in second 7, back from second 8.
	acked := []int64{1000, 1000, 1000, 1000, 1000, 0, 0, 500, 1000, 1000, 1000}
	tl := &Timeline{Gaps: []Gap{{Start: 0.2, End: 0.35}, {Start: 4.6, End: 7.1}}}
	for i, a := range acked {
		tl.Points = append(tl.Points, Point{T: float64(i + 1), Acked: a, InvokedMax: 5})
	}
	tl.Points[4].InvokedMax = 2600 // sends invoked just before the gap waited it out
	faults := []Fault{{ID: 1, Kind: "kill", Start: 4.5, End: 5.5}, {ID: 2, Kind: "kill", Start: 20, End: 21}}
	got := faultImpacts(faults, tl)
	if len(got) != 2 {
		t.Fatalf("impacts %+v", got)
	}
	if im := got[0]; im.Unavailable < 2.49 || im.Unavailable > 2.51 || im.Recovery != 3.5 || im.MaxLatency != 2600 {
		t.Errorf("first fault: %+v, want unavailable 2.5s, recovery 3.5s, max latency 2600ms", im)
	}
	if im := got[1]; im.Unavailable != 0 || im.Recovery != 0 {
		t.Errorf("a fault after the run's data: %+v, want nothing measured", im)
	}
	// Never recovered: the rate stays low to the end.
	if r := recovery([]Point{{Acked: 100}, {Acked: 100}, {Acked: 10}, {Acked: 10}}, 2); r != -1 {
		t.Errorf("recovery %v, want -1 (never)", r)
	}
	// Never dropped.
	if r := recovery([]Point{{Acked: 100}, {Acked: 100}, {Acked: 95}, {Acked: 100}}, 2); r != 0 {
		t.Errorf("recovery %v, want 0", r)
	}
}
