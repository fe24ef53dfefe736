package chaos

import (
	"reflect"
	"testing"
	"time"

	"github.com/kchaos/kchaos/internal/testkit"
)

func mustParse(t *testing.T, src string) []Fault {
	t.Helper()
	fs, err := ParseYAML("s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

const mixSpec = `
- {kind: kill, target: leader(t,0), at: 10s, for: 5s}
- {kind: pause, target: random, at: 40s, for: 2s, every: 30s}
- {kind: random, kinds: [kill, pause, isolate, partition-halves, bridge, restart], for: 4s, gap: 3s}
`

// checkSchedule asserts the invariants every schedule keeps: sorted, every start has exactly
// one end at or after it and no later than the run's end, ids dense from 1.
func checkSchedule(t *testing.T, acts []Action, dur time.Duration) {
	t.Helper()
	starts := map[int64]Action{}
	ends := map[int64]Action{}
	for i, a := range acts {
		if i > 0 && actionLess(a, acts[i-1]) {
			t.Fatalf("actions not sorted at %d: %+v after %+v", i, a, acts[i-1])
		}
		if a.At < 0 || a.At.D() > dur {
			t.Fatalf("action outside the run: %+v", a)
		}
		m := starts
		if a.Phase == PhaseEnd {
			m = ends
		}
		if _, dup := m[a.ID]; dup {
			t.Fatalf("two %s actions for fault %d", a.Phase, a.ID)
		}
		m[a.ID] = a
		if a.Fault.Kind == Random {
			t.Fatalf("random left in the schedule: %+v", a)
		}
	}
	for id, s := range starts {
		e, ok := ends[id]
		if !ok {
			t.Fatalf("fault %d started at %s never ends", id, s.At)
		}
		if e.At < s.At {
			t.Fatalf("fault %d ends (%s) before it starts (%s)", id, e.At, s.At)
		}
		if id < 1 || id > int64(len(starts)) {
			t.Fatalf("fault id %d not in 1..%d", id, len(starts))
		}
	}
	if len(ends) != len(starts) {
		t.Fatalf("%d ends for %d starts", len(ends), len(starts))
	}
}

func TestScheduleDeterministic(t *testing.T) {
	fs := mustParse(t, mixSpec)
	view := View{Brokers: 3}
	dur := 2 * time.Minute
	a, err := Schedule(42, fs, dur, view)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Schedule(42, fs, dur, view)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different schedules")
	}
	c, err := Schedule(43, fs, dur, view)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 42 and 43 gave the same schedule")
	}
	checkSchedule(t, a, dur)
	checkSchedule(t, c, dur)
}

// TestScheduleRandomMixNeverOverlaps checks, over many seeds, that a random mix fills the run
// with faults of the enabled kinds, never overlapping each other or the explicit faults, with
// a fault-free gap before each.
func TestScheduleRandomMixNeverOverlaps(t *testing.T) {
	meta := testkit.Rand(t)
	fs := mustParse(t, mixSpec)
	dur := 5 * time.Minute
	for range 200 {
		s := meta.Int64()
		acts, err := Schedule(s, fs, dur, View{Brokers: 5})
		if err != nil {
			t.Fatal(err)
		}
		checkSchedule(t, acts, dur)
		kindsSeen := map[Kind]bool{}
		var ws []window
		for _, a := range acts {
			if a.Phase == PhaseStart {
				ws = append(ws, window{a.Fault.At.D(), a.Fault.At.D() + a.Fault.For.D()})
				kindsSeen[a.Fault.Kind] = true
			}
		}
		for i := range ws {
			for j := i + 1; j < len(ws); j++ {
				if ws[i].start <= ws[j].end && ws[j].start <= ws[i].end {
					t.Fatalf("seed %d: faults %d %v and %d %v overlap", s, i+1, ws[i], j+1, ws[j])
				}
			}
		}
		if len(ws) < 20 {
			t.Fatalf("seed %d: only %d faults in 5m with 4s faults and 3s gaps", s, len(ws))
		}
		for k := range kindsSeen {
			switch k {
			case Kill, Pause, Isolate, PartitionHalves, Bridge, Restart:
			default:
				t.Fatalf("seed %d: random picked %s, not enabled", s, k)
			}
		}
	}
}
