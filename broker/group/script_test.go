package group

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchaos/kchaos/internal/testkit"
)

// TestScript runs the group state machine's scenarios in testdata/script. Each command is one
// request or timer tick at a time from the start (at=, default the previous command's); it
// prints the responses the group delivered (a JoinGroup answer can come at a later command),
// ordered by client, and the group's state. Regenerate the expected output with -rewrite and
// review the diff.
//
//	group [delay=3s]                             a new empty group
//	join client=c [id=m] [instance=i] [newid=m] [proto=range] [session=10s] [rebalance=5s]
//	sync client=c id=m gen=1 [assign=(m1=x,m2=y)]
//	heartbeat id=m gen=1 [instance=i] | leave id=m [instance=i] | tick
func TestScript(t *testing.T) {
	datadriven.Walk(t, "testdata/script", func(t *testing.T, path string) {
		var g *Group
		var at time.Duration
		var replies []string
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			replies = replies[:0]
			at = testkit.ScanDuration(t, d, "at", at)
			now := t0.Add(at)
			if g == nil && d.Cmd != "group" {
				d.Fatalf(t, "%s before group", d.Cmd)
			}
			str := func(key string) string {
				var v string
				if d.HasArg(key) {
					d.ScanArgs(t, key, &v)
				}
				return v
			}
			dur := func(key string, def time.Duration) time.Duration { return testkit.ScanDuration(t, d, key, def) }
			gen := func() int32 {
				var v int
				d.ScanArgs(t, "gen", &v)
				return int32(v)
			}
			switch d.Cmd {
			case "group":
				g, at = New("g", Config{InitialRebalanceDelay: dur("delay", 0)}, t0), 0
			case "join":
				client, proto := str("client"), str("proto")
				if proto == "" {
					proto = "range"
				}
				req := JoinRequest{MemberID: str("id"), InstanceID: str("instance"), NewMemberID: str("newid"), ProtocolType: "consumer",
					Protocols:      []Protocol{{Name: proto, Metadata: []byte(client)}},
					SessionTimeout: dur("session", 10*time.Second), RebalanceTimeout: dur("rebalance", 5*time.Second),
					RequireKnownMemberID: true, SupportsSkipAssignment: true}
				g.Join(now, req, func(r JoinResult) { replies = append(replies, fmt.Sprintf("join %s: %s\n", client, joinLine(r))) })
			case "sync":
				client := str("client")
				assign := map[string][]byte{}
				if d.HasArg("assign") {
					var kvs []string
					d.ScanArgs(t, "assign", &kvs)
					for _, kv := range kvs {
						k, v, _ := strings.Cut(kv, "=")
						assign[k] = []byte(v)
					}
				}
				g.Sync(now, SyncRequest{MemberID: str("id"), InstanceID: str("instance"), Generation: gen(), Assignments: assign},
					func(r SyncResult) {
						replies = append(replies, fmt.Sprintf("sync %s: err=%s assignment=%q\n", client, errName(r.Err), r.Assignment))
					})
			case "heartbeat":
				replies = append(replies, fmt.Sprintf("heartbeat %s: err=%s\n", str("id"), errName(g.Heartbeat(now, str("id"), str("instance"), gen()))))
			case "leave":
				replies = append(replies, fmt.Sprintf("leave %s: err=%s\n", str("id"), errName(g.Leave(now, str("id"), str("instance")))))
			case "tick":
				g.Tick(now)
			default:
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			for _, f := range g.TakeOutbox() {
				f()
			}
			// Responses delivered together come in no defined order; print them by client.
			slices.Sort(replies)
			return strings.Join(replies, "") + fmt.Sprintf("state=%s gen=%d protocol=%s leader=%s members=%v\n",
				g.State, g.Generation, g.Protocol, g.Leader, memberList(g))
		})
	})
}

func errName(err *kerr.Error) string {
	if err == nil {
		return "none"
	}
	return err.Message
}

func joinLine(r JoinResult) string {
	s := fmt.Sprintf("err=%s member=%s gen=%d protocol=%s leader=%s", errName(r.Err), r.MemberID, r.Generation, r.Protocol, r.Leader)
	if r.SkipAssignment {
		s += " skip-assignment"
	}
	if len(r.Members) > 0 {
		var ms []string
		for _, m := range r.Members {
			ms = append(ms, m.ID)
		}
		s += fmt.Sprintf(" members=%v", ms)
	}
	return s
}

// memberList names each member, with its instance id when static and its assignment.
func memberList(g *Group) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(g.Members)) {
		m := g.Members[id]
		s := id
		if m.InstanceID != "" {
			s += "(" + m.InstanceID + ")"
		}
		if len(m.Assignment) > 0 {
			s += "=" + string(m.Assignment)
		}
		out = append(out, s)
	}
	return out
}
