package chaos

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNewKindsDataForm parses each clock, packet, file, membership and resource kind from a
// workload's chaos section and checks that it survives a JSON round trip as the same value.
func TestNewKindsDataForm(t *testing.T) {
	src := `
- {kind: clock-skew, target: broker(1), for: 10s, params: {offset: -1m30s}}
- {kind: clock-skew, target: clients, for: 10s, params: {offset: 2h}}
- {kind: clock-bump, target: controller, for: 5s, params: {delta: 45s}}
- {kind: clock-strobe, target: all, for: 5s, params: {delta: 10s, period: 50ms}}
- {kind: corrupt, target: all, for: 5s, params: {rate: 10%, where: batches, links: clients}}
- {kind: duplicate, target: clients, for: 5s, params: {rate: 1}}
- {kind: reorder, target: random, for: 5s, params: {rate: 0.5, window: 30ms}}
- {kind: corrupt-file, target: leader(topic-0,0), params: {file: index, segment: active, mode: truncate}}
- {kind: corrupt-file, target: broker(2), params: {topic: t, partition: 3, flips: 4}}
- {kind: io-error, target: broker(3), for: 5s, params: {ops: [read, fsync], errno: ENOSPC, rate: 0.25}}
- {kind: reassign, target: leader(topic-0,1), for: 5s, params: {mode: shrink}}
- {kind: elect-leader, target: leader(topic-0), params: {type: unclean}}
- {kind: decommission, target: broker(3), for: 20s}
- {kind: add-broker, target: leader(topic-0,0), for: 20s}
- {kind: cpu-stress, target: leader(topic-0,0), for: 5s, params: {cpus: 0.1, mode: hog, workers: 2}}
- {kind: memory-pressure, target: random, for: 5s, params: {limit: 96MiB}}
- {kind: random, for: 3s, kinds: [clock-bump, io-error, cpu-stress], scope: brokers}
`
	got, err := ParseYAML("n.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	kinds := []Kind{ClockSkew, ClockSkew, ClockBump, ClockStrobe, Corrupt, Duplicate, Reorder, CorruptFile, CorruptFile,
		IOError, Reassign, ElectLeader, Decommission, AddBroker, CPUStress, MemoryPressure, Random}
	if len(got) != len(kinds) {
		t.Fatalf("parsed %d faults, want %d", len(got), len(kinds))
	}
	for i, k := range kinds {
		if got[i].Kind != k {
			t.Errorf("fault %d is %s, want %s", i, got[i].Kind, k)
		}
	}
	if got[1].Target.Sel != SelClients || got[9].Params["ops"] != "read,fsync" || got[16].Params["scope"] != "brokers" {
		t.Errorf("targets or params lost: %+v %+v %+v", got[1], got[9], got[16])
	}
	if !got[7].Kind.Instant() || !got[11].Kind.Instant() || got[12].Kind.Instant() {
		t.Error("corrupt-file and elect-leader are instant, decommission is not")
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back []Fault
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, got) {
		t.Errorf("JSON round trip changed faults:\n%s", b)
	}
	if !strings.Contains(string(b), `"kind":"clock-skew","target":"clients","for":"10s","params":{"offset":"2h"}`) {
		t.Errorf("JSON form not readable: %s", b)
	}
}

// TestNewKindsValidation checks that each new kind refuses what it cannot mean, naming
// file:line.
func TestNewKindsValidation(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"skew offset", "- {kind: clock-skew, params: {offset: soon}}", "n.yaml:1: clock-skew param offset=\"soon\": want a duration"},
		{"bump zero", "- {kind: clock-bump, params: {delta: 0}}", "want a duration other than 0"},
		{"strobe period", "- {kind: clock-strobe, params: {period: -5ms}}", "want a positive duration"},
		{"clients for kill", "- {kind: kill, target: clients}", "kill acts on brokers; target clients is for clock-skew, corrupt, duplicate, reorder"},
		{"corrupt rate", "- {kind: corrupt, params: {rate: 150%}}", "want a probability"},
		{"corrupt where", "- {kind: corrupt, params: {where: headers}}", "want batches, produce, anywhere"},
		{"reorder window", "- {kind: reorder, params: {window: 0}}", "want a positive duration"},
		{"file kind", "- {kind: corrupt-file, params: {file: snapshot}}", "want log, index, timeindex"},
		{"file mode", "- {kind: corrupt-file, params: {mode: blackhole}}", "want bitflip or truncate"},
		{"flips", "- {kind: corrupt-file, params: {flips: 0}}", "want a count"},
		{"io ops", "- {kind: io-error, params: {ops: [read, open]}}", "want a list of read, write, fsync"},
		{"io errno", "- {kind: io-error, params: {errno: EPERM}}", "want EIO, ENOSPC"},
		{"reassign target", "- {kind: reassign, target: broker(1)}", "needs target leader(topic,partition)"},
		{"reassign mode", "- {kind: reassign, target: leader(t,0), params: {mode: reset}}", "want move or shrink or grow"},
		{"elect type", "- {kind: elect-leader, target: leader(t,0), params: {type: dirty}}", "want preferred, unclean"},
		{"add-broker target", "- {kind: add-broker}", "add-broker needs a target"},
		{"cpus", "- {kind: cpu-stress, params: {cpus: 0}}", "want a number of CPUs above 0"},
		{"cpu mode", "- {kind: cpu-stress, params: {mode: reset}}", "want cgroup or hog"},
		{"memory limit", "- {kind: memory-pressure, params: {limit: lots}}", "want a size"},
		{"scope", "- {kind: random, for: 1s, scope: disks}", "want all, controller, brokers, clients"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseYAML("n.yaml", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestRandomMixScopes checks that a scoped random mix picks only kinds of its scope and aims
// them where the scope says, and that an unscoped one of every new kind schedules them all.
func TestRandomMixScopes(t *testing.T) {
	every := []string{"kill", "pause", "isolate", "clock-skew", "clock-bump", "clock-strobe", "corrupt", "duplicate",
		"reorder", "corrupt-file", "io-error", "cpu-stress", "memory-pressure", "drop-responses"}
	for _, c := range []struct {
		scope string
		ok    func(Fault) bool
	}{
		{"controller", func(f Fault) bool {
			return f.Target.Sel == SelController && f.Kind.Class() != "network" || f.Kind == Isolate
		}},
		{"brokers", func(f Fault) bool { return f.Target.Sel == SelData }},
		{"clients", func(f Fault) bool {
			return f.Target.Sel == SelClients || (f.Kind == Isolate && f.Params["from"] == "clients") || (f.Kind == DropResponses && f.Target.Sel == SelAll)
		}},
		{"all", func(f Fault) bool { return true }},
	} {
		t.Run(c.scope, func(t *testing.T) {
			mix := Fault{Kind: Random, For: Duration(2 * time.Second), Params: map[string]string{"kinds": strings.Join(every, ","), "scope": c.scope}}
			acts, err := Schedule(7, []Fault{mix}, 10*time.Minute, View{Brokers: 3})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[Kind]bool{}
			for _, a := range acts {
				if a.Phase != PhaseStart {
					continue
				}
				seen[a.Fault.Kind] = true
				if !c.ok(a.Fault) {
					t.Errorf("scope %s drew %s on %s %v", c.scope, a.Fault.Kind, a.Fault.Target, a.Fault.Params)
				}
				if err := a.Fault.Validate(); err != nil {
					t.Errorf("scope %s drew an invalid fault: %v", c.scope, err)
				}
			}
			var kinds []string
			for k := range seen {
				kinds = append(kinds, string(k))
			}
			slices.Sort(kinds)
			t.Logf("scope %s drew %v", c.scope, kinds)
			switch c.scope {
			case "clients":
				if seen[Kill] || seen[CPUStress] || !seen[ClockSkew] || !seen[Duplicate] {
					t.Errorf("clients scope drew %v", kinds)
				}
			case "all":
				if len(seen) != len(every) {
					t.Errorf("ten minutes of an unscoped mix drew %d kinds of %d: %v", len(seen), len(every), kinds)
				}
			default:
				if seen[Duplicate] || seen[DropResponses] || !seen[ClockBump] || !seen[IOError] {
					t.Errorf("%s scope drew %v", c.scope, kinds)
				}
			}
		})
	}
}

// TestSelectDataAndClients resolves the selectors the scoped mixes use.
func TestSelectDataAndClients(t *testing.T) {
	view := ClusterView{Brokers: []int32{1, 2, 3}, Controller: 2}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		got, err := Select(Target{Sel: SelData}, view, rng)
		if err != nil || len(got) != 1 || got[0] == 2 {
			t.Fatalf("data picked %v %v; want one broker that is not the controller", got, err)
		}
	}
	r, err := Resolve(Fault{Kind: ClockSkew, Target: Target{Sel: SelClients}}, view, rng)
	if err != nil || !r.Clients || !slices.Equal(r.Nodes, view.Brokers) {
		t.Fatalf("clients resolved to %+v %v", r, err)
	}
	lone := ClusterView{Brokers: []int32{1}, Controller: 1}
	if got, err := Select(Target{Sel: SelData}, lone, rng); err != nil || !slices.Equal(got, []int32{1}) {
		t.Fatalf("data on a lone broker: %v %v", got, err)
	}
}

// TestSelectOneFollower picks one follower of a partition, never its leader.
func TestSelectOneFollower(t *testing.T) {
	view := ClusterView{Brokers: []int32{1, 2, 3}, Topics: map[string][]PartitionView{"t": {{Partition: 0, Leader: 2, Replicas: []int32{1, 2, 3}}}}}
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[int32]bool{}
	for range 50 {
		got, err := Select(Target{Sel: SelFollower, Topic: "t", Partition: 0}, view, rng)
		if err != nil || len(got) != 1 || got[0] == 2 {
			t.Fatalf("follower(t,0) picked %v %v", got, err)
		}
		seen[got[0]] = true
	}
	if len(seen) != 2 {
		t.Errorf("follower(t,0) always picked %v", seen)
	}
	if tg, err := ParseTarget("follower(t,0)"); err != nil || tg.String() != "follower(t,0)" {
		t.Errorf("follower(t,0) parses to %v %v", tg, err)
	}
}

// TestRandomMixRotatesAndHandsOnParams checks pick: rotate takes every kind in turn and that
// KIND.NAME params reach KIND's instances, which lets a mix pick kinds that need params.
func TestRandomMixRotatesAndHandsOnParams(t *testing.T) {
	if _, err := ParseYAML("r.yaml", []byte("- {kind: random, for: 1s, kinds: [latency, kill]}")); err == nil || !strings.Contains(err.Error(), "give it as latency.delay") {
		t.Fatalf("a mix of latency without latency.delay: %v", err)
	}
	if _, err := ParseYAML("r.yaml", []byte("- {kind: random, for: 1s, kinds: [kill], params: {kill.delay: 1s}}")); err == nil || !strings.Contains(err.Error(), `kill does not take param "delay"`) {
		t.Fatalf("kill.delay: %v", err)
	}
	fs, err := ParseYAML("r.yaml", []byte("- {kind: random, for: 1s, gap: 1s, pick: rotate, kinds: [latency, kill, clock-bump], params: {latency.delay: 70ms, clock-bump.delta: -5m}}"))
	if err != nil {
		t.Fatal(err)
	}
	acts, err := Schedule(3, fs, time.Minute, View{Brokers: 3})
	if err != nil {
		t.Fatal(err)
	}
	var order []Kind
	for _, a := range acts {
		if a.Phase != PhaseStart {
			continue
		}
		order = append(order, a.Fault.Kind)
		switch a.Fault.Kind {
		case Latency:
			if a.Fault.Params["delay"] != "70ms" {
				t.Errorf("latency instance params %v", a.Fault.Params)
			}
		case ClockBump:
			if a.Fault.Params["delta"] != "-5m" {
				t.Errorf("clock-bump instance params %v", a.Fault.Params)
			}
		}
	}
	for i := 3; i < len(order); i++ {
		if order[i] != order[i-3] {
			t.Fatalf("rotate order %v does not repeat every 3", order)
		}
	}
	if len(order) < 6 {
		t.Fatalf("only %d faults in a minute", len(order))
	}
}
