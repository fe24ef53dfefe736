package chaos

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/workloads"
)

func TestParseFaults(t *testing.T) {
	src := `
- kind: kill
  target: leader(topic-0,0)
  at: 8s
  for: 4s
- {kind: pause, target: broker(2), at: 1m, for: 500ms, every: 2m}
- kind: latency
  target: controller
  params: {delay: 50ms, jitter: 10ms, links: peers}
- kind: random
  kinds: [kill, isolate]
  gap: 5s
  for: 3s
- kind: lose-unfsynced-writes
  target: all
  at: 15s
- kind: partition-halves
  at: 2s
  for: 1s
`
	got, err := ParseYAML("w.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Fault{
		{Kind: Kill, Target: Target{Sel: SelLeader, Topic: "topic-0", Partition: 0}, At: Duration(8 * time.Second), For: Duration(4 * time.Second), Pos: "w.yaml:2"},
		{Kind: Pause, Target: Target{Sel: SelBroker, Broker: 2}, At: Duration(time.Minute), For: Duration(500 * time.Millisecond), Every: Duration(2 * time.Minute), Pos: "w.yaml:6"},
		{Kind: Latency, Target: Target{Sel: SelController}, Params: map[string]string{"delay": "50ms", "jitter": "10ms", "links": "peers"}, Pos: "w.yaml:7"},
		{Kind: Random, Params: map[string]string{"kinds": "kill,isolate", "gap": "5s"}, For: Duration(3 * time.Second), Pos: "w.yaml:10"},
		{Kind: LoseUnsynced, Target: Target{Sel: SelAll}, At: Duration(15 * time.Second), Pos: "w.yaml:14"},
		{Kind: PartitionHalves, At: Duration(2 * time.Second), For: Duration(time.Second), Pos: "w.yaml:17"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d faults, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("fault %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// Faults are data: a JSON round trip keeps them.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back []Fault
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, got) {
		t.Errorf("JSON round trip changed faults:\n%s\n%+v", b, back)
	}
	if !strings.Contains(string(b), `"target":"leader(topic-0,0)","at":"8s","for":"4s"`) {
		t.Errorf("JSON form not readable: %s", b)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"bad kind", "- kind: explode\n  target: all\n", []string{"e.yaml:1:", `unknown fault kind "explode"`}},
		{"bad duration", "- kind: kill\n  at: soon\n", []string{"e.yaml:2:", `at: "soon" is not a duration`}},
		{"negative for", "- kind: kill\n  for: -3s\n", []string{"e.yaml:2:", "not a duration"}},
		{"unknown target", "- kind: kill\n  target: the-big-one\n", []string{"e.yaml:2:", `unknown target "the-big-one"`}},
		{"bad partition", "- kind: kill\n  target: leader(t,x)\n", []string{"e.yaml:2:", "not a partition number"}},
		{"target on no-target kind", "- kind: bridge\n  target: all\n", []string{"e.yaml:2:", "takes no target"}},
		{"leader isolate needs leader", "- kind: leader-isolate-from-followers\n  target: random\n", []string{"e.yaml:2:", "needs target leader"}},
		{"missing param", "- kind: latency\n  target: all\n", []string{"e.yaml:1:", `needs param "delay"`}},
		{"bad param", "- kind: loss\n  params: {rate: 2}\n", []string{"e.yaml:1:", "probability"}},
		{"unknown param", "- kind: kill\n  params: {force: yes}\n", []string{"e.yaml:1:", `does not take param "force"`}},
		{"unknown field", "- kind: kill\n  when: 3s\n", []string{"e.yaml:2:", `unknown fault field "when"`}},
		{"overlapping repeats", "- kind: pause\n  for: 10s\n  every: 5s\n", []string{"e.yaml:1:", "shorter than every"}},
		{"not a list", "kind: kill\n", []string{"e.yaml:1:", "must be a list"}},
		{"no kind", "- target: all\n", []string{"e.yaml:1:", "no kind"}},
		{"two errors", "- kind: kill\n  at: x\n- kind: nope\n", []string{"e.yaml:2:", "e.yaml:3:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseYAML("e.yaml", []byte(c.src))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseWorkloadChaosSection(t *testing.T) {
	plan, err := workloads.Load("testdata/workloads/leader-kill.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Parse(plan.Configs[0].Chaos)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Kind != Kill || fs[0].Target.String() != "leader(topic-0,0)" || !strings.HasSuffix(fs[0].Pos, "leader-kill.yaml:12") {
		t.Fatalf("chaos parsed as %+v", fs)
	}
}

func TestTargetTextRoundTrip(t *testing.T) {
	for _, s := range []string{"leader(t,3)", "leader(t)", "followers(topic-0,0)", "controller", "random", "minority", "majority", "all", "broker(7)"} {
		tg, err := ParseTarget(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if tg.String() != s {
			t.Errorf("%s parsed and printed as %s", s, tg)
		}
	}
}

// TestParseFlowTargetTwice parses a shipped workload's flow-style faults twice (matrix
// configurations share one section): {target: leader(t,0)} must survive YAML's comma split.
func TestParseFlowTargetTwice(t *testing.T) {
	fs, err := ParseYAML("f.yaml", []byte("- {kind: partition, target: leader(t,0), params: {from: followers(t,0)}, at: 1s}\n"))
	if err != nil || fs[0].Params["from"] != "followers(t,0)" || fs[0].Target.String() != "leader(t,0)" {
		t.Fatalf("flow params: %+v %v", fs, err)
	}
	plan, err := workloads.Load("../workloads/claim-03-acks-all-no-loss.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		fs, err := Parse(plan.Configs[0].Chaos)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 3 || fs[0].Target.String() != "leader(topic-0,0)" || fs[1].Target.String() != "leader(topic-0,1)" {
			t.Fatalf("flow targets parsed as %+v", fs)
		}
	}
}

// TestRenameTopics: a run's topic names reach both a fault's target and its "from" target,
// so partition faults between a leader and its followers find the run's topic.
func TestRenameTopics(t *testing.T) {
	plan, err := workloads.Load("testdata/workloads/leader-partition.yaml")
	if err != nil {
		t.Fatal(err)
	}
	faults, err := Parse(plan.Configs[0].Chaos)
	if err != nil {
		t.Fatal(err)
	}
	faults = append(faults, Fault{Kind: Isolate, Target: Target{Sel: SelBroker, Broker: 1}, Params: map[string]string{"from": "peers"}})
	if err != nil {
		t.Fatal(err)
	}
	RenameTopics(faults, func(s string) string { return "run-" + s })
	if got := faults[0].Target.String(); got != "leader(run-topic-0,0)" {
		t.Errorf("target %s", got)
	}
	if got := faults[0].Params["from"]; got != "followers(run-topic-0,0)" {
		t.Errorf("from %s", got)
	}
	if got := faults[2].Params["from"]; got != "peers" {
		t.Errorf("non-target param rewritten: %s", got)
	}
}

// TestEveryShippedWorkloadsChaosParses: each shipped workload file's chaos section (every
// matrix configuration) parses and validates, so `kchaos run` can run it.
func TestEveryShippedWorkloadsChaosParses(t *testing.T) {
	files, err := filepath.Glob("../workloads/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no workload files: %v", err)
	}
	for _, f := range files {
		plan, err := workloads.Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, rc := range plan.Configs {
			if _, err := Parse(rc.Chaos); err != nil {
				t.Errorf("%s (%s): %v", f, rc.Config, err)
				break
			}
		}
	}
}
