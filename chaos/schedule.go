package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"
)

// Phase is the start or end of one fault instance.
type Phase string

// Phases, as written in history fault events.
const (
	PhaseStart Phase = "start"
	PhaseEnd   Phase = "end"
)

// Action is one timed step of a schedule: the start or end of one fault instance.
type Action struct {
	// At is the time from the start of the run.
	At Duration `json:"at"`
	// ID numbers the fault instance, from 1 in order of start time; a start and its end share it.
	ID int64 `json:"id"`
	// Phase is start or end.
	Phase Phase `json:"phase"`
	// Fault is the instance: never Random, Every 0, At and For its own window.
	Fault Fault `json:"fault"`
	// Seed seeds the random choices made when the fault starts (which broker is "random",
	// which partition of leader(topic)), derived from the schedule seed and ID.
	Seed int64 `json:"seed"`
}

// View is what the scheduler knows of the cluster and the driver.
type View struct {
	// Brokers is the number of brokers; a random mix skips kinds that need more.
	Brokers int
	// Kinds are the kinds the driver can do; nil means every kind.
	Kinds []Kind
	// Missing says, for kinds the driver cannot do, why (e.g. a qdisc the kernel lacks);
	// optional.
	Missing map[Kind]string
}

func (v View) supports(k Kind) bool { return v.Kinds == nil || slices.Contains(v.Kinds, k) }

// why returns ": REASON" when Missing explains k, else "".
func (v View) why(k Kind) string {
	if m := v.Missing[k]; m != "" {
		return ": " + m
	}
	return ""
}

// minBrokers is the cluster size a kind needs to mean anything.
func minBrokers(k Kind) int {
	switch k {
	case PartitionHalves, Isolate, Partition, LeaderIsolateFromFollowers:
		return 2
	case MajoritiesRing, Bridge:
		return 3
	}
	return 1
}

// defaultMix are the kinds a random mix picks when its spec names none: process and
// network faults that need no parameters; disk faults only when asked.
var defaultMix = []Kind{Kill, Stop, Pause, Restart, Isolate, PartitionHalves, MajoritiesRing, Bridge}

// window is a span of time a fault instance occupies; end == start for instant kinds.
type window struct{ start, end time.Duration }

// Schedule turns fault specs into timed actions: a pure function of its arguments. Explicit
// faults start at At and end after For (at the end of the run when For is 0); recurring ones
// repeat every Every from At while they start before the run ends; a random mix places seeded
// faults in the gaps the others leave, so it never overlaps anything. Explicit faults may
// overlap each other: writing the times is asking for it. Every started fault ends no later
// than duration. The result is sorted by time, ends before starts at the same instant.
func Schedule(seed int64, faults []Fault, duration time.Duration, view View) ([]Action, error) {
	if duration <= 0 {
		return nil, fmt.Errorf("chaos: schedule: run duration %s must be positive", duration)
	}
	type inst struct {
		f     Fault
		w     window
		order int
	}
	var insts []inst
	var errs []string
	for i, f := range faults {
		if err := f.Validate(); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if f.Kind == Random {
			continue
		}
		where := ""
		if f.Pos != "" {
			where = f.Pos + ": "
		}
		if !view.supports(f.Kind) {
			errs = append(errs, fmt.Sprintf("chaos: %sthe driver cannot do %s%s", where, f.Kind, view.why(f.Kind)))
			continue
		}
		if f.At.D() >= duration {
			errs = append(errs, fmt.Sprintf("chaos: %s%s starts at %s, when the run (%s) is over", where, f.Kind, f.At, duration))
			continue
		}
		for at := f.At.D(); at < duration; at += f.Every.D() {
			insts = append(insts, inst{f: f, w: instWindow(f.Kind, at, f.For.D(), duration), order: i})
			if f.Every <= 0 {
				break
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b6368616f73)) // "kchaos"
	for i, f := range faults {
		if f.Kind != Random {
			continue
		}
		busy := make([]window, len(insts))
		for j, in := range insts {
			busy[j] = in.w
		}
		mix, err := randomMix(rng, f, duration, view, busy)
		if err != nil {
			return nil, err
		}
		for _, m := range mix {
			insts = append(insts, inst{f: m.f, w: m.w, order: i})
		}
	}
	sort.SliceStable(insts, func(a, b int) bool {
		if insts[a].w.start != insts[b].w.start {
			return insts[a].w.start < insts[b].w.start
		}
		return insts[a].order < insts[b].order
	})
	var out []Action
	for i, in := range insts {
		id := int64(i + 1)
		f := in.f
		f.At, f.For, f.Every = Duration(in.w.start), Duration(in.w.end-in.w.start), 0
		s := instanceSeed(seed, id)
		out = append(out, Action{At: Duration(in.w.start), ID: id, Phase: PhaseStart, Fault: f, Seed: s},
			Action{At: Duration(in.w.end), ID: id, Phase: PhaseEnd, Fault: f, Seed: s})
	}
	sort.SliceStable(out, func(a, b int) bool { return actionLess(out[a], out[b]) })
	return out, nil
}

// actionLess orders by time; at one instant, ends of earlier faults come first, then starts,
// and an instant fault's end right after its start.
func actionLess(a, b Action) bool {
	if a.At != b.At {
		return a.At < b.At
	}
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return ra < rb
	}
	if a.ID != b.ID {
		return a.ID < b.ID
	}
	return a.Phase == PhaseStart && b.Phase == PhaseEnd
}

func rank(a Action) int {
	if a.Phase == PhaseEnd && a.Fault.At < a.At {
		return 0
	}
	return 1
}

func instWindow(k Kind, at, dur, runEnd time.Duration) window {
	if k.Instant() {
		return window{at, at}
	}
	end := at + dur
	if dur <= 0 || end > runEnd {
		end = runEnd
	}
	return window{at, end}
}

// instanceSeed mixes the schedule seed and an instance id (splitmix64).
func instanceSeed(seed, id int64) int64 {
	z := uint64(seed) + uint64(id)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int64((z ^ (z >> 31)) >> 1)
}

type mixInst struct {
	f Fault
	w window
}

// mixKinds returns the kinds a random spec may pick on this view.
func mixKinds(f Fault, view View) ([]Kind, error) {
	var want []Kind
	if s := f.Params["kinds"]; s != "" {
		for _, k := range strings.Split(s, ",") {
			kk := Kind(strings.TrimSpace(k))
			if a, ok := kindAliases[string(kk)]; ok {
				kk = a
			}
			want = append(want, kk)
		}
	} else {
		want = defaultMix
	}
	scope := f.param("scope", "all")
	var out []Kind
	for _, k := range want {
		if !inScope(k, scope) {
			continue
		}
		if kinds[k].target == "required" && f.Target.IsZero() {
			continue
		}
		switch k {
		case LeaderIsolateFromFollowers, Reassign, ElectLeader, AddBroker:
			if f.Target.Sel != SelLeader {
				continue
			}
		}
		if view.supports(k) && (view.Brokers == 0 || view.Brokers >= minBrokers(k)) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("chaos: %s: random has no kind it can run on %d brokers with this driver in scope %s (asked for %v)", f.Pos, view.Brokers, scope, want)
	}
	return out, nil
}

// randomMix places faults from At to the end of the run, drawing each kind uniformly, each
// duration from [For/2, 3For/2) and each fault-free gap before it from [gap/2, 3gap/2),
// skipping over busy windows.
func randomMix(rng *rand.Rand, f Fault, duration time.Duration, view View, busy []window) ([]mixInst, error) {
	ks, err := mixKinds(f, view)
	if err != nil {
		return nil, err
	}
	gap := f.paramDuration("gap", f.For.D())
	draw := func(mean time.Duration) time.Duration {
		if mean <= 0 {
			return 0
		}
		return mean/2 + time.Duration(rng.Int64N(int64(mean)))
	}
	var out []mixInst
	t := f.At.D()
	rotate := f.param("pick", "random") == "rotate"
	if rotate {
		rng.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
	}
	turn := 0
	for {
		t += draw(gap)
		k := ks[rng.IntN(len(ks))]
		if rotate {
			k = ks[turn%len(ks)]
		}
		d := draw(f.For.D())
		if k.Instant() {
			d = 0
		}
		w := window{t, t + d}
		if clash, ok := overlapping(w, busy); ok {
			t = clash.end + time.Millisecond
			continue
		}
		if w.end >= duration {
			return out, nil
		}
		inst := scoped(f, k)
		if m := f.param("mode", ""); m != "" && k.Class() == "network" && slices.Contains(kinds[k].params, "mode") {
			if inst.Params == nil {
				inst.Params = map[string]string{}
			}
			inst.Params["mode"] = m
		}
		for name, v := range f.Params {
			if kk, pn, ok := strings.Cut(name, "."); ok && Kind(kk) == k {
				if inst.Params == nil {
					inst.Params = map[string]string{}
				}
				inst.Params[pn] = v
			}
		}
		out = append(out, mixInst{f: inst, w: w})
		busy = append(busy, w)
		turn++
		t = w.end
	}
}

// overlapping returns a busy window that w touches (closed intervals, so an instant fault at
// another's end counts as touching).
func overlapping(w window, busy []window) (window, bool) {
	for _, b := range busy {
		if w.start <= b.end && b.start <= w.end {
			return b, true
		}
	}
	return window{}, false
}

// inScope reports whether a random mix of scope may pick k. Controller and brokers scopes
// take the kinds that act on one chosen broker (process, disk, clock, resource faults and
// isolate); clients takes the kinds that act on the clients' links and clocks.
func inScope(k Kind, scope string) bool {
	switch scope {
	case "controller", "brokers":
		switch k.Class() {
		case "process", "disk", "clock", "resource":
			return true
		}
		return k == Isolate
	case "clients":
		return slices.Contains(clientKinds, k) || k == Isolate || k == DropResponses
	}
	return true
}

// scoped returns the fault instance a random mix f draws for kind k: its target by the mix's
// scope (the active controller, a broker that is not the controller, or the clients) or the
// mix's own target (default random), and the params the scope implies.
func scoped(f Fault, k Kind) Fault {
	inst := Fault{Kind: k, Pos: f.Pos}
	if kinds[k].target == "none" {
		return inst
	}
	inst.Target = f.Target
	switch f.param("scope", "all") {
	case "controller":
		inst.Target = Target{Sel: SelController}
	case "brokers":
		inst.Target = Target{Sel: SelData}
	case "clients":
		switch {
		case slices.Contains(clientKinds, k):
			inst.Target = Target{Sel: SelClients}
		case k == Isolate:
			inst.Target = Target{Sel: SelRandom}
			inst.Params = map[string]string{"from": "clients"}
		default:
			inst.Target = Target{Sel: SelAll}
		}
	}
	if inst.Target.IsZero() {
		inst.Target = Target{Sel: SelRandom}
	}
	return inst
}
