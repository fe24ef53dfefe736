package checker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kchaos/kchaos/history"
)

// script writes events (times in milliseconds) as a history and checks it.
type script struct {
	t      *testing.T
	events []history.Event
}

func newScript(t *testing.T, run history.Run) *script {
	run.Version, run.RunID = history.Version, "r"
	return &script{t: t, events: []history.Event{{Process: history.ProcessObserver, Type: history.Info, F: history.FRun, Partition: -1, Offset: -1, Run: &run}}}
}

func (s *script) add(ms int64, e history.Event) *script {
	e.Time = ms * 1e6
	if e.F != history.FSend && e.F != history.FMeta {
		e.Partition = -1
	}
	if e.Offset == 0 && e.F != history.FSend {
		e.Offset = -1
	}
	s.events = append(s.events, e)
	return s
}

// send is an invoke at ms and an ok at ms+1 at partition/offset.
func (s *script) send(ms int64, proc int, value, key string, part int32, off int64) *script {
	s.add(ms, history.Event{Process: proc, Type: history.Invoke, F: history.FSend, Topic: "t", Partition: -1, Key: key, Value: value, Offset: -1})
	return s.add(ms+1, history.Event{Process: proc, Type: history.OK, F: history.FSend, Topic: "t", Partition: part, Key: key, Value: value, Offset: off})
}

func (s *script) poll(ms int64, proc int, recs ...history.Record) *script {
	return s.add(ms, history.Event{Process: proc, Type: history.OK, F: history.FPoll, Topic: "t", Records: recs})
}

func (s *script) fault(ms int64, id int64, phase, kind string) *script {
	return s.add(ms, history.Event{Process: history.ProcessNemesis, Type: history.Info, F: history.FFault,
		Fault: &history.Fault{ID: id, Phase: phase, Kind: kind, Target: "all"}})
}

func (s *script) assign(ms int64, proc int, group string, gen int32, parts ...int32) *script {
	e := history.Event{Process: proc, Type: history.OK, F: history.FAssign, Topic: "t"}
	for _, p := range parts {
		e.Offsets = append(e.Offsets, history.PartitionOffset{Partition: p, Offset: -1})
	}
	if group != "" {
		e.Group = &history.Membership{ID: group, Generation: gen}
	}
	return s.add(ms, e)
}

func (s *script) check() *Result {
	s.t.Helper()
	path := filepath.Join(s.t.TempDir(), "h.jsonl")
	f, err := os.Create(path)
	if err != nil {
		s.t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for i := range s.events {
		s.events[i].Index = int64(i)
		if err := enc.Encode(&s.events[i]); err != nil {
			s.t.Fatal(err)
		}
	}
	f.Close()
	res, err := CheckFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	return res
}

func rec(p int32, off int64, v string) history.Record {
	return history.Record{Partition: p, Offset: off, Value: v}
}

// TestLostAttributedToFaults: a record lost around a kill counts for the kill; one lost far
// from any fault counts as none.
func TestLostAttributedToFaults(t *testing.T) {
	s := newScript(t, history.Run{Acks: "1", ReplicationFactor: 3})
	s.send(1000, 0, "0-0", "", 0, 0).send(1100, 0, "0-1", "", 0, 1).send(1200, 0, "0-2", "", 0, 2)
	s.fault(3000, 1, "start", "kill").fault(4000, 1, "end", "kill")
	s.send(30000, 0, "0-3", "", 0, 3).send(30100, 0, "0-4", "", 0, 4)
	s.assign(40000, 5, "", 0, 0).poll(40100, 5, rec(0, 0, "0-0"), rec(0, 2, "0-2"), rec(0, 4, "0-4"))
	res := s.check()
	a := res.Anomalies[Lost]
	if a.Count != 2 || a.Faults["kill"] != 1 || a.Faults[NoFault] != 1 {
		t.Errorf("lost %d by fault %v", a.Count, a.Faults)
	}
}

// TestOrderAnomalyCauses: a send acknowledged below an earlier one of its producer, both at
// their acknowledged offsets, is a retry's work; one whose earlier offset later held another
// value is a truncation's.
func TestOrderAnomalyCauses(t *testing.T) {
	s := newScript(t, history.Run{Acks: "all", ReplicationFactor: 3, MinInsyncReplicas: 2, MaxInFlight: 5})
	s.add(1000, history.Event{Process: 0, Type: history.Invoke, F: history.FSend, Topic: "t", Key: "k", Value: "0-0", Offset: -1, Partition: -1})
	s.add(1001, history.Event{Process: 0, Type: history.Invoke, F: history.FSend, Topic: "t", Key: "k", Value: "0-1", Offset: -1, Partition: -1})
	s.add(1002, history.Event{Process: 0, Type: history.OK, F: history.FSend, Topic: "t", Key: "k", Value: "0-1", Partition: 0, Offset: 0})
	s.add(1003, history.Event{Process: 0, Type: history.OK, F: history.FSend, Topic: "t", Key: "k", Value: "0-0", Partition: 0, Offset: 1})
	s.assign(2000, 5, "", 0, 0).poll(2100, 5, rec(0, 0, "0-1"), rec(0, 1, "0-0"))
	res := s.check()
	for _, n := range []string{Reorder, NonmonotonicSend} {
		if a := res.Anomalies[n]; a.Count != 1 || a.Causes[CauseRetry] != 1 {
			t.Errorf("%s: %d, causes %v", n, a.Count, a.Causes)
		}
	}

	s = newScript(t, history.Run{Acks: "1", ReplicationFactor: 3, MaxInFlight: 5})
	s.send(1000, 0, "0-0", "k", 0, 5).send(2000, 0, "0-1", "k", 0, 3)
	s.assign(3000, 5, "", 0, 0).poll(3100, 5, rec(0, 3, "0-1"), rec(0, 4, "1-0"), rec(0, 5, "1-1"))
	res = s.check()
	if a := res.Anomalies[NonmonotonicSend]; a.Count != 1 || a.Causes[CauseTruncation] != 1 {
		t.Errorf("truncation: nonmonotonic-send %d, causes %v", a.Count, a.Causes)
	}
}

// TestReadInversions: a consumer reading an unkeyed producer's records from two partitions
// reads them out of send order; keyed records of one key keep theirs.
func TestReadInversions(t *testing.T) {
	for _, tc := range []struct {
		keys [4]string
		want int64
	}{{[4]string{"", "", "", ""}, 2}, {[4]string{"a", "b", "a", "b"}, 0}} {
		s := newScript(t, history.Run{Acks: "all"})
		s.send(1000, 0, "0-0", tc.keys[0], 0, 0).send(1010, 0, "0-1", tc.keys[1], 1, 0).send(1020, 0, "0-2", tc.keys[2], 0, 1).send(1030, 0, "0-3", tc.keys[3], 1, 1)
		s.assign(1500, 5, "", 0, 0, 1).poll(1600, 5, rec(1, 0, "0-1"), rec(1, 1, "0-3")).poll(1700, 5, rec(0, 0, "0-0"), rec(0, 1, "0-2"))
		if res := s.check(); res.Stats.ReadInversions != tc.want {
			t.Errorf("keys %v: %d inversions, want %d", tc.keys, res.Stats.ReadInversions, tc.want)
		}
	}
}

// TestGroupGenerations: each generation's assignment, idle members, the pause of a
// rebalance and the fault it followed; a partition read by two members of one generation and
// records read by an idle member are counted.
func TestGroupGenerations(t *testing.T) {
	build := func(bad bool) *Result {
		s := newScript(t, history.Run{Acks: "all"})
		s.send(100, 0, "0-0", "", 0, 0).send(110, 0, "0-1", "", 1, 0).send(9000, 0, "0-2", "", 0, 1).send(9010, 0, "0-3", "", 1, 1)
		s.add(200, history.Event{Process: 5, Type: history.OK, F: history.FSubscribe, Topic: "t", Group: &history.Membership{ID: "g", Generation: -1}})
		s.add(200, history.Event{Process: 6, Type: history.OK, F: history.FSubscribe, Topic: "t", Group: &history.Membership{ID: "g", Generation: -1}})
		s.assign(300, 5, "g", 1, 0, 1).assign(310, 6, "g", 1)
		s.poll(400, 5, rec(0, 0, "0-0"), rec(1, 0, "0-1"))
		if bad {
			s.poll(450, 6, rec(1, 0, "0-1"))
		}
		s.fault(8000, 1, "start", "restart-consumer").fault(9500, 1, "end", "restart-consumer")
		s.assign(10000, 5, "g", 2, 0).assign(10010, 6, "g", 2, 1)
		s.poll(10500, 5, rec(0, 1, "0-2")).poll(11000, 6, rec(1, 1, "0-3"))
		if bad {
			s.poll(11100, 5, rec(1, 1, "0-3"))
		}
		return s.check()
	}
	res := build(false)
	if len(res.Groups) != 1 {
		t.Fatalf("groups: %+v", res.Groups)
	}
	g := res.Groups[0]
	if g.ID != "g" || g.Members != 2 || g.Rebalances != 1 || g.Shared != 0 || g.IdleReads != 0 || len(g.Generations) != 2 {
		t.Fatalf("group: %+v", g)
	}
	g1, g2 := g.Generations[0], g.Generations[1]
	if g1.Idle != 1 || g1.Partitions != 2 || g1.Pause != -1 || g2.Idle != 0 || g2.Pause != 10600e6 || len(g2.Faults) != 1 || g2.Faults[0] != "restart-consumer" {
		t.Errorf("generations: %+v %+v", g1, g2)
	}
	// The idle member's read shares partition 1 in generation 1; member 5's read of
	// partition 1 shares it in generation 2.
	g = build(true).Groups[0]
	if g.Shared != 2 || g.IdleReads != 1 {
		t.Errorf("shared %d, idle reads %d; want 2 and 1", g.Shared, g.IdleReads)
	}
}

// TestUnacknowledgedUnread: an acks=0 send no read returned is counted; so is nothing in an
// acks=1 run, where an unacknowledged send may simply have failed.
func TestUnacknowledgedUnread(t *testing.T) {
	for acks, want := range map[string]int64{"0": 1, "1": 0} {
		s := newScript(t, history.Run{Acks: acks})
		for i, v := range []string{"0-0", "0-1"} {
			s.add(int64(100+i), history.Event{Process: 0, Type: history.Invoke, F: history.FSend, Topic: "t", Value: v, Partition: -1, Offset: -1})
			s.add(int64(110+i), history.Event{Process: 0, Type: history.Info, F: history.FSend, Topic: "t", Value: v, Partition: 0, Offset: -1, Error: "NO_ACKS"})
		}
		s.assign(200, 5, "", 0, 0).poll(300, 5, rec(0, 0, "0-0"))
		if got := s.check().Stats.UnacknowledgedUnread; got != want {
			t.Errorf("acks=%s: %d unacknowledged unread, want %d", acks, got, want)
		}
	}
}

// TestPowerLossOnEveryReplica: lose-unsynced on every broker, with flush.messages not 1,
// claims no durability; on one broker with RF=3 and acks=all it still does (claims 8, 9).
func TestPowerLossOnEveryReplica(t *testing.T) {
	run := history.Run{Acks: "all", ReplicationFactor: 3, MinInsyncReplicas: 2}
	for _, tc := range []struct {
		target string
		nodes  []int32
		want   bool
	}{{"all", []int32{1, 2, 3}, false}, {"leader(t,0)", []int32{2}, true}} {
		r := &Result{Run: &run, Anomalies: newAnomalies(), Faults: []FaultWindow{{ID: 1, Kind: "lose-unsynced", Target: tc.target, Nodes: tc.nodes}}}
		if got, _ := durable(factsOf(r)); got != tc.want {
			t.Errorf("lose-unsynced on %s: durability claimed %v", tc.target, got)
		}
	}
}
