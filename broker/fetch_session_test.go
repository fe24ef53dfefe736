package broker

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func testSessionCache(slots int) *fetchSessionCache {
	return newFetchSessionCache(slots, rand.New(rand.NewPCG(1, 2)), newMetrics().fetchSessions)
}

// sessionFetch is a v12 fetch request of the session (id, epoch) naming partitions of topic
// "t" (fetch offset 0) and forgetting others.
func sessionFetch(id, epoch int32, parts []int32, forget ...int32) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.SetVersion(12)
	r.SessionID, r.SessionEpoch = id, epoch
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.Partitions = "t", forget
		r.ForgottenTopics = append(r.ForgottenTopics, ft)
	}
	return r
}

// partState is what the fake log answers for one partition.
type partState struct {
	hw      int64
	records bool
	err     *kerr.Error
}

// respond builds the response buildFetch would give for fc's targets from state, runs finish
// and returns the partitions the client sees as "p:hw" (with "+rec" or "!err").
func respond(c *fetchSessionCache, fc *fetchContext, state map[int32]partState, nowMs int64) (*kmsg.FetchResponse, string) {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(12)
	for _, t := range fc.targets {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != t.topic {
			st := kmsg.NewFetchResponseTopic()
			st.Topic = t.topic
			resp.Topics = append(resp.Topics, st)
		}
		sp := kmsg.NewFetchResponseTopicPartition()
		s := state[t.part.Partition]
		sp.Partition, sp.HighWatermark, sp.LogStartOffset = t.part.Partition, s.hw, 0
		sp.RecordBatches = []byte{}
		if s.records {
			sp.RecordBatches = []byte{1}
		}
		if s.err != nil {
			sp.ErrorCode, sp.HighWatermark = s.err.Code, -1
		}
		resp.Topics[len(resp.Topics)-1].Partitions = append(resp.Topics[len(resp.Topics)-1].Partitions, sp)
	}
	c.finish(fc, resp, nowMs)
	var seen []string
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			s := fmt.Sprintf("%d:%d", rp.Partition, rp.HighWatermark)
			if len(rp.RecordBatches) > 0 {
				s += "+rec"
			}
			if rp.ErrorCode != 0 {
				s += "!" + kerr.ErrorForCode(rp.ErrorCode).(*kerr.Error).Message
			}
			seen = append(seen, s)
		}
	}
	return resp, strings.Join(seen, " ")
}

func targetOrder(fc *fetchContext) string {
	var s []string
	for _, t := range fc.targets {
		s = append(s, fmt.Sprint(t.part.Partition))
	}
	return strings.Join(s, ",")
}

func TestFetchSessionLifecycle(t *testing.T) {
	c := testSessionCache(10)
	state := map[int32]partState{0: {hw: 5}, 1: {hw: 7}}
	fc := c.newContext(sessionFetch(0, 0, []int32{0, 1}), 12, false, 0)
	resp, seen := respond(c, fc, state, 0)
	id := resp.SessionID
	if fc.mode != fetchFull || id <= 0 || seen != "0:5 1:7" {
		t.Fatalf("full fetch: mode %d session %d partitions %q", fc.mode, id, seen)
	}
	if got := metricValue(t, c.m.sessions); got != 1 {
		t.Fatalf("sessions gauge %v", got)
	}
	if got := metricValue(t, c.m.partitions); got != 2 {
		t.Fatalf("partitions gauge %v", got)
	}
	epoch := int32(1)
	step := func(what string, req *kmsg.FetchRequest, wantMode fetchMode, wantSeen, wantOrder string) *kmsg.FetchResponse {
		t.Helper()
		fc := c.newContext(req, req.Version, false, 1000)
		if fc.mode != wantMode {
			t.Fatalf("%s: mode %s, want %s", what, fetchModeNames[fc.mode], fetchModeNames[wantMode])
		}
		if wantOrder != "" && targetOrder(fc) != wantOrder {
			t.Fatalf("%s: fetch order %s, want %s", what, targetOrder(fc), wantOrder)
		}
		resp, seen := respond(c, fc, state, 1000)
		if seen != wantSeen {
			t.Fatalf("%s: response partitions %q, want %q", what, seen, wantSeen)
		}
		if wantMode == fetchIncremental {
			epoch++
		}
		return resp
	}
	step("nothing changed", sessionFetch(id, epoch, nil), fetchIncremental, "", "0,1")
	state[1] = partState{hw: 8}
	step("high watermark moved", sessionFetch(id, epoch, nil), fetchIncremental, "1:8", "0,1")
	state[0] = partState{hw: 6, records: true}
	step("records", sessionFetch(id, epoch, nil), fetchIncremental, "0:6+rec", "0,1")
	state[0] = partState{hw: 6}
	step("the partition that had records is fetched last", sessionFetch(id, epoch, nil), fetchIncremental, "", "1,0")
	state[1] = partState{err: kerr.NotLeaderForPartition}
	step("error", sessionFetch(id, epoch, nil), fetchIncremental, "1:-1!"+kerr.NotLeaderForPartition.Message, "")
	step("error again", sessionFetch(id, epoch, nil), fetchIncremental, "1:-1!"+kerr.NotLeaderForPartition.Message, "")
	state[1] = partState{hw: 8}
	step("error cleared: sent once more", sessionFetch(id, epoch, nil), fetchIncremental, "1:8", "")
	state[2] = partState{hw: 1}
	step("a partition joins", sessionFetch(id, epoch, []int32{2}), fetchIncremental, "2:1", "1,0,2")

	if r := step("stale epoch", sessionFetch(id, epoch-1, nil), fetchSessionError, "", ""); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || r.SessionID != 0 {
		t.Fatalf("stale epoch: error %d session %d", r.ErrorCode, r.SessionID)
	}
	if r := step("unknown session", sessionFetch(id+1, 1, nil), fetchSessionError, "", ""); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: error %d", r.ErrorCode)
	}
	v13 := sessionFetch(id, epoch, nil)
	v13.SetVersion(13)
	if r := step("topic ids in a name session", v13, fetchSessionError, "", ""); r.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("topic id mix: error %d", r.ErrorCode)
	}
	step("forget two", sessionFetch(id, epoch, nil, 0, 2), fetchIncremental, "", "1")
	if r := step("forget the last", sessionFetch(id, epoch, nil, 1), fetchSessionless, "", ""); r.SessionID != 0 {
		t.Fatalf("empty session kept id %d", r.SessionID)
	}
	if len(c.sessions) != 0 || metricValue(t, c.m.partitions) != 0 {
		t.Fatalf("%d sessions, %v partitions left", len(c.sessions), metricValue(t, c.m.partitions))
	}

	// A sessionless request (epoch -1) closes the session it names; epoch 0 replaces it.
	fc = c.newContext(sessionFetch(0, 0, []int32{0}), 12, false, 0)
	resp, _ = respond(c, fc, state, 0)
	fc = c.newContext(sessionFetch(resp.SessionID, 0, []int32{0}), 12, false, 0)
	resp2, _ := respond(c, fc, state, 0)
	if len(c.sessions) != 1 || c.sessions[resp.SessionID] != nil || resp2.SessionID == 0 {
		t.Fatalf("full fetch naming a session: sessions %d, old kept %v", len(c.sessions), c.sessions[resp.SessionID] != nil)
	}
	fc = c.newContext(sessionFetch(resp2.SessionID, -1, []int32{0}), 12, false, 0)
	if resp, _ := respond(c, fc, state, 0); fc.mode != fetchSessionless || resp.SessionID != 0 || len(c.sessions) != 0 {
		t.Fatalf("sessionless close: mode %d session %d, %d sessions", fc.mode, resp.SessionID, len(c.sessions))
	}
	if got := metricValue(t, c.m.requests.WithLabelValues("incremental")); got != 9 {
		t.Fatalf("incremental requests counted %v, want 9", got)
	}
}

func TestFetchSessionEviction(t *testing.T) {
	c := testSessionCache(2)
	state := map[int32]partState{}
	create := func(parts int, follower bool, nowMs int64) int32 {
		var ps []int32
		for i := range parts {
			ps = append(ps, int32(i))
		}
		fc := c.newContext(sessionFetch(0, 0, ps), 12, follower, nowMs)
		resp, _ := respond(c, fc, state, nowMs)
		return resp.SessionID
	}
	use := func(id int32, nowMs int64) {
		fc := c.newContext(sessionFetch(id, c.sessions[id].epoch, nil), 12, false, nowMs)
		if fc.mode != fetchIncremental {
			t.Fatalf("session %d at %d: mode %s", id, nowMs, fetchModeNames[fc.mode])
		}
		respond(c, fc, state, nowMs)
	}
	small, big := create(1, false, 0), create(3, false, 0)
	if small == 0 || big == 0 {
		t.Fatal("no session created in an empty cache")
	}
	if id := create(5, false, 1000); id != 0 {
		t.Fatal("a consumer evicted a session younger than 2 minutes")
	}
	use(small, 130_000)
	use(big, 130_000)
	mid := create(2, false, 131_000)
	if mid == 0 || c.sessions[small] != nil || c.sessions[big] == nil {
		t.Fatalf("a 2-partition session should evict the old 1-partition one: got %d, small kept %v", mid, c.sessions[small] != nil)
	}
	if id := create(1, false, 132_000); id != 0 {
		t.Fatal("a 1-partition session evicted a bigger one")
	}
	if id := create(1, true, 132_000); id == 0 || c.sessions[mid] != nil {
		t.Fatalf("a follower's session should evict the young consumer session at once: got %d", id)
	}
	// Unused for more than 2 minutes: evicted whatever its value.
	if id := create(1, false, 132_000+120_001); id == 0 || c.sessions[big] != nil {
		t.Fatalf("a stale session was not evicted: got %d", id)
	}
	if got := metricValue(t, c.m.evictions); got != 3 {
		t.Fatalf("evictions %v, want 3", got)
	}
	none := testSessionCache(0)
	fc := none.newContext(sessionFetch(0, 0, []int32{0}), 12, false, 0)
	if resp, _ := respond(none, fc, state, 0); resp.SessionID != 0 {
		t.Fatal("a session was created with max.incremental.fetch.session.cache.slots=0")
	}
}

// metricValue reads a gauge's or counter's current value.
func metricValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v (%d families)", err, len(mfs))
	}
	m := mfs[0].GetMetric()[0]
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}
