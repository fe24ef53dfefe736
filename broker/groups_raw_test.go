package broker_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawMember drives the group protocol by hand with kmsg requests.
type rawMember struct {
	t        *testing.T
	cl       *kgo.Client
	group    string
	memberID string
	gen      int32
}

// join joins (answering MEMBER_ID_REQUIRED with a second join) and syncs as leader with an
// empty assignment, leaving the group Stable with this one member.
func (m *rawMember) join(instance *string) {
	m.t.Helper()
	ctx := context.Background()
	for range 2 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.InstanceID = m.group, m.memberID, instance
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 1000
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(ctx, m.cl)
		if err != nil {
			m.t.Fatal(err)
		}
		m.memberID = resp.MemberID
		if resp.ErrorCode == kerr.MemberIDRequired.Code {
			continue
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			m.t.Fatalf("join: %v", err)
		}
		m.gen = resp.Generation
		break
	}
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group, sreq.MemberID, sreq.Generation, sreq.InstanceID = m.group, m.memberID, m.gen, instance
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = m.memberID, []byte{0, 0, 0, 0, 0, 0, 0, 0}
	sreq.GroupAssignment = append(sreq.GroupAssignment, a)
	sresp, err := sreq.RequestWith(ctx, m.cl)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := kerr.ErrorForCode(sresp.ErrorCode); err != nil {
		m.t.Fatalf("sync: %v", err)
	}
}

func (m *rawMember) commit(memberID string, gen int32, topic string, partition int32, offset int64) error {
	m.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = m.group, memberID, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), m.cl)
	if err != nil {
		m.t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

func (m *rawMember) heartbeat(memberID string, gen int32, instance *string) error {
	m.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation, req.InstanceID = m.group, memberID, gen, instance
	resp, err := req.RequestWith(context.Background(), m.cl)
	if err != nil {
		m.t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

func fetchCommitted(t *testing.T, cl *kgo.Client, groupID, topic string, partition int32) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = groupID // null topics: every committed partition
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Groups[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Groups[0].Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic == topic && rp.Partition == partition {
				return rp.Offset
			}
		}
	}
	return -1
}

// TestCommitFencing: commits from a stale generation or an unknown member are rejected with
// ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID and never applied; heartbeats are fenced the same
// way; a static member's old member id is fenced with FENCED_INSTANCE_ID once the instance
// rejoins.
func TestCommitFencing(t *testing.T) {
	b := startInProcess(t, t.TempDir(), groupProps)
	createTopic(t, newClient(t, b.Addr()), "fenced", 1, nil)
	cl := adminClient(t, b.Addr())
	m := &rawMember{t: t, cl: cl, group: "fg"}
	m.join(nil)
	if err := m.commit(m.memberID, m.gen, "fenced", 0, 10); err != nil {
		t.Fatalf("current member commit: %v", err)
	}
	for _, tc := range []struct {
		name   string
		member string
		gen    int32
		want   error
	}{
		{"stale generation", m.memberID, m.gen - 1, kerr.IllegalGeneration},
		{"future generation", m.memberID, m.gen + 1, kerr.IllegalGeneration},
		{"unknown member", "intruder-1", m.gen, kerr.UnknownMemberID},
		{"simple commit into an active group", "", -1, kerr.UnknownMemberID},
	} {
		if err := m.commit(tc.member, tc.gen, "fenced", 0, 99); err != tc.want {
			t.Errorf("%s: commit error %v, want %v", tc.name, err, tc.want)
		}
		if err := m.heartbeat(tc.member, tc.gen, nil); err != tc.want {
			t.Errorf("%s: heartbeat error %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := fetchCommitted(t, cl, "fg", "fenced", 0); got != 10 {
		t.Fatalf("committed offset %d after rejected commits, want 10", got)
	}
	if err := m.commit(m.memberID, m.gen, "nope", 0, 1); err != kerr.UnknownTopicOrPartition {
		t.Errorf("commit to an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}

	inst := "static-1"
	s := &rawMember{t: t, cl: cl, group: "fg-static"}
	s.join(&inst)
	oldID, oldGen := s.memberID, s.gen
	s2 := &rawMember{t: t, cl: cl, group: "fg-static"}
	s2.join(&inst)
	if s2.memberID == oldID {
		t.Fatal("a rejoining static instance kept its member id")
	}
	if err := s.heartbeat(oldID, oldGen, &inst); err != kerr.FencedInstanceID {
		t.Errorf("old member id of a static instance: heartbeat %v, want FENCED_INSTANCE_ID", err)
	}
	if err := s2.heartbeat(s2.memberID, s2.gen, &inst); err != nil {
		t.Errorf("new member id of a static instance: heartbeat %v", err)
	}
}

// TestKcatBalancedConsumer: kcat's balanced consumer (librdkafka, -G) joins a group, gets the
// partitions and consumes every record; its commits land in the group.
func TestKcatBalancedConsumer(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatalf("kcat is required: %v", err)
	}
	b := startInProcess(t, t.TempDir(), groupProps)
	createTopic(t, newClient(t, b.Addr()), "kcat-topic", 1, nil)
	produceN(t, b.Addr(), "kcat-topic", 20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", "-b", b.Addr(), "-G", "kcat-group", "-c", "20", "-f", "%o:%s\n",
		"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "auto.commit.interval.ms=100", "kcat-topic")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, ":") && !strings.Contains(line, "%") {
			got = append(got, line)
		}
	}
	if len(got) != 20 || got[0] != "0:0" || got[19] != "19:19" {
		t.Fatalf("kcat consumed %d records %v, want offsets 0..19\n%s", len(got), got, out)
	}
	admin := adminClient(t, b.Addr())
	req := kmsg.NewPtrListGroupsRequest()
	resp, err := req.RequestWith(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range resp.Groups {
		found = found || g.Group == "kcat-group" && g.ProtocolType == "consumer"
	}
	if !found {
		t.Fatalf("ListGroups lacks kcat-group: %+v", resp.Groups)
	}
	if off := fetchCommitted(t, admin, "kcat-group", "kcat-topic", 0); off != 20 {
		t.Fatalf("kcat's committed offset is %d, want 20", off)
	}
}
