package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

var t0 = time.Unix(1_700_000_000, 0)

const (
	session   = 10 * time.Second
	rebalance = 5 * time.Second
)

// harness records replies delivered through the outbox.
type harness struct {
	t     *testing.T
	g     *Group
	joins map[string]JoinResult
	syncs map[string]SyncResult
}

func newHarness(t *testing.T, delay time.Duration) *harness {
	return &harness{t: t, g: New("g", Config{InitialRebalanceDelay: delay}, t0), joins: map[string]JoinResult{}, syncs: map[string]SyncResult{}}
}

func (h *harness) flush() {
	for _, f := range h.g.TakeOutbox() {
		f()
	}
}

func protos(meta string) []Protocol { return []Protocol{{Name: "range", Metadata: []byte(meta)}} }

// join sends a JoinGroup as member key (its current id, "" for new) and records the answer
// under key once it arrives.
func (h *harness) join(at time.Duration, key, memberID, instance string, newID string) {
	req := JoinRequest{MemberID: memberID, InstanceID: instance, ProtocolType: "consumer", Protocols: protos("m"),
		SessionTimeout: session, RebalanceTimeout: rebalance, RequireKnownMemberID: true, SupportsSkipAssignment: true, NewMemberID: newID}
	delete(h.joins, key)
	h.g.Join(t0.Add(at), req, func(r JoinResult) { h.joins[key] = r })
	h.flush()
}

func (h *harness) sync(at time.Duration, key, memberID string, gen int32, assign map[string][]byte) {
	delete(h.syncs, key)
	h.g.Sync(t0.Add(at), SyncRequest{MemberID: memberID, Generation: gen, Assignments: assign}, func(r SyncResult) { h.syncs[key] = r })
	h.flush()
}

func (h *harness) tick(at time.Duration) {
	h.g.Tick(t0.Add(at))
	h.flush()
}

func (h *harness) wantState(s State) {
	h.t.Helper()
	if h.g.State != s {
		h.t.Fatalf("state %v, want %v", h.g.State, s)
	}
}

// stableTwo builds a Stable group of dynamic members "a" (leader) and "b" at generation 1.
func stableTwo(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, 0)
	h.join(0, "a", "", "", "a")
	if r := h.joins["a"]; r.Err != kerr.MemberIDRequired || r.MemberID != "a" {
		t.Fatalf("first join: %+v, want MEMBER_ID_REQUIRED with id a", r)
	}
	h.join(0, "a", "a", "", "")
	h.join(0, "b", "", "", "b")
	h.join(0, "b", "b", "", "")
	h.wantState(PreparingRebalance)
	h.tick(10 * time.Millisecond) // the (zero) initial delay ends on the next tick
	h.wantState(CompletingRebalance)
	ra, rb := h.joins["a"], h.joins["b"]
	if ra.Generation != 1 || rb.Generation != 1 || ra.Leader != "a" || len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("join results a=%+v b=%+v", ra, rb)
	}
	h.sync(20*time.Millisecond, "b", "b", 1, nil)
	if _, ok := h.syncs["b"]; ok {
		t.Fatal("follower's sync answered before the leader's")
	}
	h.sync(20*time.Millisecond, "a", "a", 1, map[string][]byte{"a": []byte("A"), "b": []byte("B")})
	h.wantState(Stable)
	if string(h.syncs["a"].Assignment) != "A" || string(h.syncs["b"].Assignment) != "B" {
		t.Fatalf("sync results %+v", h.syncs)
	}
	return h
}

func TestJoinSyncStable(t *testing.T) {
	h := stableTwo(t)
	if h.g.Rebalances != 1 || h.g.Protocol != "range" {
		t.Fatalf("rebalances %d protocol %q", h.g.Rebalances, h.g.Protocol)
	}
	// A follower rejoining with the same metadata in Stable gets the current generation
	// without a rebalance.
	h.join(time.Second, "b", "b", "", "")
	if r := h.joins["b"]; r.Err != nil || r.Generation != 1 {
		t.Fatalf("follower rejoin: %+v", r)
	}
	h.wantState(Stable)
	// The leader rejoining forces a rebalance (how it asks for a new assignment).
	h.join(time.Second, "a", "a", "", "")
	h.wantState(PreparingRebalance)
	if err := h.g.Heartbeat(t0.Add(time.Second), "b", "", 1); err != kerr.RebalanceInProgress {
		t.Fatalf("heartbeat during rebalance: %v", err)
	}
	h.join(time.Second, "b", "b", "", "")
	h.wantState(CompletingRebalance)
	if h.joins["a"].Generation != 2 {
		t.Fatalf("generation after rebalance: %+v", h.joins["a"])
	}
}

func TestInitialDelayWaitsAndExtends(t *testing.T) {
	h := newHarness(t, 100*time.Millisecond)
	h.join(0, "a", "", "s1", "a") // static members join without MEMBER_ID_REQUIRED
	h.wantState(PreparingRebalance)
	h.tick(60 * time.Millisecond)
	h.join(60*time.Millisecond, "b", "", "s2", "b")
	h.tick(100 * time.Millisecond) // a joiner arrived during the delay: extended by 100ms
	h.wantState(PreparingRebalance)
	h.tick(150 * time.Millisecond)
	h.wantState(PreparingRebalance)
	h.tick(200 * time.Millisecond)
	h.wantState(CompletingRebalance)
	if len(h.joins) != 2 || h.joins["a"].Generation != 1 {
		t.Fatalf("joins %+v", h.joins)
	}
}

func TestSessionExpiryRebalances(t *testing.T) {
	h := stableTwo(t)
	for at := time.Second; at <= session+2*time.Second; at += time.Second {
		if err := h.g.Heartbeat(t0.Add(at), "a", "", 1); err != nil {
			h.join(at, "a", "a", "", "")
		}
		h.tick(at)
	}
	if _, ok := h.g.Members["b"]; ok {
		t.Fatal("b is still a member after its session expired")
	}
	// a rejoined as soon as its heartbeat said REBALANCE_IN_PROGRESS: generation 2 alone.
	h.wantState(CompletingRebalance)
	if r := h.joins["a"]; r.Generation != 2 || len(r.Members) != 1 {
		t.Fatalf("a's join after b expired: %+v", r)
	}
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	h := stableTwo(t)
	h.join(time.Second, "a", "a", "", "") // leader rejoins: rebalance starts
	h.wantState(PreparingRebalance)
	h.g.Heartbeat(t0.Add(2*time.Second), "b", "", 1) // b keeps its session but never rejoins
	h.tick(time.Second + rebalance - time.Millisecond)
	h.wantState(PreparingRebalance)
	h.tick(time.Second + rebalance)
	h.wantState(CompletingRebalance)
	if _, ok := h.g.Members["b"]; ok {
		t.Fatal("b survived the rebalance timeout without rejoining")
	}
	if err := h.g.Heartbeat(t0.Add(7*time.Second), "b", "", 1); err != kerr.UnknownMemberID {
		t.Fatalf("removed member's heartbeat: %v", err)
	}
}

func TestStaticRestartKeepsAssignment(t *testing.T) {
	h := newHarness(t, 0)
	h.join(0, "a", "", "ia", "a1")
	h.join(0, "b", "", "ib", "b1")
	h.tick(10 * time.Millisecond)
	h.sync(20*time.Millisecond, "a", "a1", 1, map[string][]byte{"a1": []byte("A"), "b1": []byte("B")})
	h.sync(20*time.Millisecond, "b", "b1", 1, nil)
	h.wantState(Stable)
	// b restarts with new subscription metadata (owned partitions) and no member id.
	req := JoinRequest{InstanceID: "ib", ProtocolType: "consumer", Protocols: protos("changed"), SessionTimeout: session,
		RebalanceTimeout: rebalance, RequireKnownMemberID: true, NewMemberID: "b2"}
	var got JoinResult
	h.g.Join(t0.Add(time.Second), req, func(r JoinResult) { got = r })
	h.flush()
	h.wantState(Stable)
	if got.Err != nil || got.MemberID != "b2" || got.Generation != 1 || h.g.Rebalances != 1 {
		t.Fatalf("static rejoin: %+v rebalances %d", got, h.g.Rebalances)
	}
	h.sync(time.Second, "b", "b2", 1, nil)
	if string(h.syncs["b"].Assignment) != "B" {
		t.Fatalf("restarted static member's assignment %q, want B", h.syncs["b"].Assignment)
	}
	if err := h.g.Heartbeat(t0.Add(time.Second), "b1", "ib", 1); err != kerr.FencedInstanceID {
		t.Fatalf("old static member id: %v, want FENCED_INSTANCE_ID", err)
	}
}

// TestValidationByState is the error table for Heartbeat and CheckCommit in each state.
func TestValidationByState(t *testing.T) {
	type check struct {
		member    string
		gen       int32
		heartbeat error
		commit    error
	}
	for _, tc := range []struct {
		name   string
		setup  func(h *harness)
		checks []check
	}{
		{"Empty", func(h *harness) {}, []check{
			{"", -1, kerr.UnknownMemberID, nil},
			{"x", 0, kerr.UnknownMemberID, kerr.UnknownMemberID},
		}},
		{"Stable", func(h *harness) {}, []check{
			{"a", 1, nil, nil},
			{"a", 0, kerr.IllegalGeneration, kerr.IllegalGeneration},
			{"zz", 1, kerr.UnknownMemberID, kerr.UnknownMemberID},
			{"", -1, kerr.UnknownMemberID, kerr.UnknownMemberID},
		}},
		{"PreparingRebalance", func(h *harness) { h.join(time.Second, "a", "a", "", "") }, []check{
			{"b", 1, kerr.RebalanceInProgress, nil}, // commits allowed before revoking
			{"b", 2, kerr.IllegalGeneration, kerr.IllegalGeneration},
		}},
		{"CompletingRebalance", func(h *harness) {
			h.join(time.Second, "a", "a", "", "")
			h.join(time.Second, "b", "b", "", "")
		}, []check{
			{"b", 2, nil, kerr.RebalanceInProgress},
			{"b", 1, kerr.IllegalGeneration, kerr.RebalanceInProgress},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h *harness
			if tc.name == "Empty" {
				h = newHarness(t, 0)
			} else {
				h = stableTwo(t)
				tc.setup(h)
			}
			h.wantState(map[string]State{"Empty": Empty, "Stable": Stable, "PreparingRebalance": PreparingRebalance, "CompletingRebalance": CompletingRebalance}[tc.name])
			for _, c := range tc.checks {
				if err := h.g.Heartbeat(t0.Add(time.Second), c.member, "", c.gen); err != asError(c.heartbeat) {
					t.Errorf("heartbeat(%q, %d) = %v, want %v", c.member, c.gen, err, c.heartbeat)
				}
				if err := h.g.CheckCommit(c.member, "", c.gen); err != asError(c.commit) {
					t.Errorf("commit(%q, %d) = %v, want %v", c.member, c.gen, err, c.commit)
				}
			}
		})
	}
}

// asError turns a nil *kerr.Error held in an error interface back into a nil comparison.
func asError(e error) *kerr.Error {
	if e == nil {
		return nil
	}
	return e.(*kerr.Error)
}

func TestLeaveRebalancesAndEmpties(t *testing.T) {
	h := stableTwo(t)
	if err := h.g.Leave(t0.Add(time.Second), "b", ""); err != nil {
		t.Fatal(err)
	}
	h.wantState(PreparingRebalance)
	h.join(time.Second, "a", "a", "", "")
	h.wantState(CompletingRebalance)
	if err := h.g.Leave(t0.Add(2*time.Second), "a", ""); err != nil {
		t.Fatal(err)
	}
	h.wantState(Empty)
	if h.g.Generation != 3 {
		t.Fatalf("generation %d after the last member left, want 3", h.g.Generation)
	}
	if err := h.g.Leave(t0.Add(2*time.Second), "a", ""); err != kerr.UnknownMemberID {
		t.Fatalf("leaving twice: %v", err)
	}
}
