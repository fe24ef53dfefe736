package replica

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestScripts runs the scripted scenarios in testdata/ (go test -run TestScripts -rewrite
// regenerates the expected output; review it as a diff). Each file drives one Partition:
//
//	new self=1 [hw=0]
//	apply leader=1 epoch=1 [pepoch=0] replicas=(1,2,3) isr=(1,2,3) [min-isr=1] leo=0 [at=0s]
//	append leo=10
//	fetch replica=2 offset=10 leo=10 at=1s
//	tick leo=10 at=40s [max-lag=30s]
//	done [isr=(1,2) pepoch=1 | refused] leo=10   (answers the last proposal)
//	check-append [acks=all]
//	check-acks offset=9
//	follower-hw leader-hw=10 leo=8
//	truncated leo=5
//	diverging epoch=2 end=10 local-epoch=1 local-end=8 leo=15
//	out-of-range fetch=10 log-start=0 hw=5
//
// Every command on the partition prints what it decided, then the state.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var p *Partition
		var last *Proposal
		t0 := time.Unix(1_700_000_000, 0)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			a := args{t: t, d: d}
			var out strings.Builder
			if d.Cmd != "new" && d.Cmd != "diverging" && d.Cmd != "out-of-range" && p == nil {
				d.Fatalf(t, "%s before new", d.Cmd)
			}
			at := func() time.Time { return t0.Add(a.dur("at", 0)) }
			proposal := func(pr *Proposal) {
				if pr != nil {
					last = pr
					fmt.Fprintf(&out, "propose isr=%v leader-epoch=%d partition-epoch=%d\n", pr.ISR, pr.LeaderEpoch, pr.PartitionEpoch)
				}
			}
			switch d.Cmd {
			case "new":
				p = New(int32(a.int("self", 1)), a.int("hw", 0))
			case "apply":
				c := p.Apply(Assignment{Leader: int32(a.int("leader", -1)), LeaderEpoch: int32(a.int("epoch", 0)),
					PartitionEpoch: int32(a.int("pepoch", 0)), Replicas: a.ids("replicas"), ISR: a.ids("isr")},
					int(a.int("min-isr", 1)), a.int("leo", 0), at())
				fmt.Fprintf(&out, "%s\n", change(c))
			case "append":
				fmt.Fprintf(&out, "hw-moved=%t\n", p.Appended(a.int("leo", 0)))
			case "fetch":
				moved, pr := p.FollowerFetch(int32(a.int("replica", 0)), a.int("offset", 0), a.int("leo", 0), at())
				fmt.Fprintf(&out, "hw-moved=%t\n", moved)
				proposal(pr)
			case "tick":
				pr := p.Tick(a.int("leo", 0), at(), a.dur("max-lag", 30*time.Second))
				if pr == nil {
					out.WriteString("no change\n")
				}
				proposal(pr)
			case "done":
				if last == nil {
					d.Fatalf(t, "done without a proposal")
				}
				var res *Assignment
				if !d.HasArg("refused") {
					res = &Assignment{Leader: p.Leader(), LeaderEpoch: int32(a.int("epoch", int64(last.LeaderEpoch))),
						PartitionEpoch: int32(a.int("pepoch", int64(last.PartitionEpoch)+1)), ISR: a.ids("isr")}
				}
				applied, moved := p.AlterPartitionDone(*last, res, a.int("leo", 0))
				fmt.Fprintf(&out, "applied=%t hw-moved=%t\n", applied, moved)
			case "check-append":
				fmt.Fprintf(&out, "%s\n", errName(p.CheckAppend(a.str("acks") == "all")))
			case "check-acks":
				done, err := p.CheckAcks(a.int("offset", 0))
				if !done {
					out.WriteString("waiting\n")
				} else {
					fmt.Fprintf(&out, "done %s\n", errName(err))
				}
			case "follower-hw":
				fmt.Fprintf(&out, "hw-moved=%t\n", p.FollowerHighWatermark(a.int("leader-hw", 0), a.int("leo", 0)))
			case "truncated":
				p.Truncated(a.int("leo", 0))
			case "diverging":
				tr := OnDivergingEpoch(EpochEndOffset{int32(a.int("epoch", -1)), a.int("end", -1)},
					EpochEndOffset{int32(a.int("local-epoch", -1)), a.int("local-end", -1)}, a.int("leo", 0))
				return fmt.Sprintf("truncate to=%d full=%t complete=%t\n", tr.To, tr.Full, tr.Complete)
			case "out-of-range":
				tr := OnOffsetOutOfRange(a.int("fetch", 0), a.int("log-start", 0), a.int("hw", 0))
				return fmt.Sprintf("truncate to=%d full=%t complete=%t\n", tr.To, tr.Full, tr.Complete)
			default:
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			out.WriteString(state(p))
			return out.String()
		})
	})
}

// state prints a partition's whole state, followers sorted by id.
func state(p *Partition) string {
	var b strings.Builder
	a := p.Assignment()
	role := "follower"
	switch {
	case p.IsLeader():
		role = "leader"
	case a.Leader == NoLeader:
		role = "offline"
	}
	fmt.Fprintf(&b, "state: %s leader=%d epoch=%d pepoch=%d replicas=%v isr=%v min-isr=%d hw=%d",
		role, a.Leader, a.LeaderEpoch, a.PartitionEpoch, a.Replicas, a.ISR, p.MinISR(), p.HighWatermark())
	if pr := p.Pending(); pr != nil {
		fmt.Fprintf(&b, " pending=%v", pr.ISR)
	}
	b.WriteString("\n")
	ids := slices.Sorted(func(yield func(int32) bool) {
		for id := range p.followers {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range ids {
		f := p.Follower(id)
		caught := "never"
		if !f.LastCaughtUp.IsZero() {
			caught = f.LastCaughtUp.Sub(time.Unix(1_700_000_000, 0)).String()
		}
		fmt.Fprintf(&b, "  follower %d: leo=%d caught-up=%s\n", id, f.LogEndOffset, caught)
	}
	return b.String()
}

func change(c Change) string {
	var parts []string
	for _, f := range []struct {
		on   bool
		name string
	}{{c.Stale, "stale"}, {c.BecameLeader, "became-leader"}, {c.LostLeadership, "lost-leadership"}, {c.HighWatermarkMoved, "hw-moved"}} {
		if f.on {
			parts = append(parts, f.name)
		}
	}
	if len(parts) == 0 {
		return "no transition"
	}
	return strings.Join(parts, " ")
}

func errName(err *kerr.Error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// args reads a command's key=value arguments.
type args struct {
	t *testing.T
	d *datadriven.TestData
}

func (a args) str(key string) string {
	arg, ok := a.d.Arg(key)
	if !ok || len(arg.Vals) == 0 {
		return ""
	}
	return arg.Vals[0]
}

func (a args) int(key string, def int64) int64 {
	s := a.str(key)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		a.d.Fatalf(a.t, "%s=%q: %v", key, s, err)
	}
	return n
}

func (a args) dur(key string, def time.Duration) time.Duration {
	s := a.str(key)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		a.d.Fatalf(a.t, "%s=%q: %v", key, s, err)
	}
	return d
}

func (a args) ids(key string) []int32 {
	arg, ok := a.d.Arg(key)
	if !ok {
		return nil
	}
	out := []int32{}
	for _, v := range arg.Vals {
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			a.d.Fatalf(a.t, "%s: %q is not a broker id", key, v)
		}
		out = append(out, int32(n))
	}
	return out
}
