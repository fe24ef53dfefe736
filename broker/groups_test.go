package broker_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker"
)

// groupProps are broker settings that keep group tests fast: no initial rebalance delay and
// sessions as short as 100ms allowed.
var groupProps = map[string]string{
	"group.initial.rebalance.delay.ms": "0",
	"group.min.session.timeout.ms":     "100",
}

// describedGroup is a group as DescribeGroups shows it, with decoded assignments.
type describedGroup struct {
	state   string
	members map[string][]string // member id -> "topic/partition" sorted
	clients map[string]string   // member id -> client id
	inst    map[string]string   // member id -> instance id
}

func describe(t *testing.T, cl *kgo.Client, groupID string) describedGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{groupID}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		t.Fatalf("describe %s: %v", groupID, err)
	}
	d := describedGroup{state: g.State, members: map[string][]string{}, clients: map[string]string{}, inst: map[string]string{}}
	for _, m := range g.Members {
		var a kmsg.ConsumerMemberAssignment
		var tps []string
		if len(m.MemberAssignment) > 0 {
			if err := a.ReadFrom(m.MemberAssignment); err != nil {
				t.Fatalf("member %s assignment %x: %v", m.MemberID, m.MemberAssignment, err)
			}
			for _, at := range a.Topics {
				for _, p := range at.Partitions {
					tps = append(tps, fmt.Sprintf("%s/%d", at.Topic, p))
				}
			}
		}
		sort.Strings(tps)
		d.members[m.MemberID] = tps
		d.clients[m.MemberID] = m.ClientID
		if m.InstanceID != nil {
			d.inst[m.MemberID] = *m.InstanceID
		}
	}
	return d
}

// exactCover reports whether the members' assignments cover topic/0..n-1 exactly once each,
// every member owning at least one partition.
func (d describedGroup) exactCover(topic string, n int) bool {
	seen := map[string]int{}
	for _, tps := range d.members {
		if len(tps) == 0 {
			return false
		}
		for _, tp := range tps {
			seen[tp]++
		}
	}
	if len(seen) != n {
		return false
	}
	for i := range n {
		if seen[fmt.Sprintf("%s/%d", topic, i)] != 1 {
			return false
		}
	}
	return true
}

// waitGroup polls DescribeGroups until cond holds or the timeout passes.
func waitGroup(t *testing.T, cl *kgo.Client, groupID string, timeout time.Duration, what string, cond func(describedGroup) bool) describedGroup {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := describe(t, cl, groupID)
		if d.state == "Stable" && cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: %s not reached within %v; last: state %s members %v", groupID, what, timeout, d.state, d.members)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func adminClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceN produces n records with values "0".."n-1" to partition 0 of topic.
func produceN(t *testing.T, addr, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// franzMember is a franz-go group consumer polling in the background.
type franzMember struct {
	cl   *kgo.Client
	stop context.CancelFunc
	done chan struct{}
}

func startFranzMember(t *testing.T, addr, groupID, topic string, opts ...kgo.Opt) *franzMember {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(2 * time.Second), kgo.HeartbeatInterval(100 * time.Millisecond), kgo.RebalanceTimeout(3 * time.Second)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &franzMember{cl: cl, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(m.close)
	return m
}

func (m *franzMember) close() {
	select {
	case <-m.done:
		return
	default:
	}
	m.stop()
	<-m.done
	m.cl.Close()
}

// TestFranzGroupShareAndReassign: three franz-go members share six partitions, each owned by
// exactly one member; when one leaves, the other two take over its partitions.
func TestFranzGroupShareAndReassign(t *testing.T) {
	b := startInProcess(t, t.TempDir(), groupProps)
	createTopic(t, newClient(t, b.Addr()), "orders", 6, nil)
	admin := adminClient(t, b.Addr())
	var ms []*franzMember
	for i := range 3 {
		ms = append(ms, startFranzMember(t, b.Addr(), "g1", "orders", kgo.ClientID(fmt.Sprintf("franz-%d", i))))
	}
	d := waitGroup(t, admin, "g1", 20*time.Second, "3 members covering 6 partitions", func(d describedGroup) bool {
		return len(d.members) == 3 && d.exactCover("orders", 6)
	})
	for id, tps := range d.members {
		if len(tps) != 2 {
			t.Errorf("member %s owns %v, want 2 partitions", id, tps)
		}
	}
	ms[1].close()
	waitGroup(t, admin, "g1", 20*time.Second, "2 members covering 6 partitions after a leave", func(d describedGroup) bool {
		return len(d.members) == 2 && d.exactCover("orders", 6)
	})
}

// TestFranzStaticMemberRestartNoRebalance: a static member (group.instance.id) that restarts
// within the session timeout gets its partitions back without a rebalance: the other member
// never sees a revoke or assign and the coordinator's rebalance count does not move.
func TestFranzStaticMemberRestartNoRebalance(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.New(broker.Config{NodeID: 1, Listen: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", DataDir: dir, Props: groupProps}, broker.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	createTopic(t, newClient(t, b.Addr()), "events", 4, nil)
	admin := adminClient(t, b.Addr())
	var mu sync.Mutex
	changes := 0
	watch := kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { mu.Lock(); changes++; mu.Unlock() })
	static := []kgo.Opt{kgo.SessionTimeout(5 * time.Second), kgo.Balancers(kgo.RangeBalancer())}
	startFranzMember(t, b.Addr(), "g2", "events", append(static, kgo.InstanceID("a"), watch)...)
	m2 := startFranzMember(t, b.Addr(), "g2", "events", append(static, kgo.InstanceID("b"))...)
	before := waitGroup(t, admin, "g2", 20*time.Second, "2 static members covering 4 partitions", func(d describedGroup) bool {
		return len(d.members) == 2 && d.exactCover("events", 4)
	})
	rebalances := scrapeMetric(t, b.MetricsAddr(), "kafka_coordinator_group_completed_rebalances_total")
	mu.Lock()
	changes = 0
	mu.Unlock()
	m2.close()
	startFranzMember(t, b.Addr(), "g2", "events", append(static, kgo.InstanceID("b"))...)
	after := waitGroup(t, admin, "g2", 20*time.Second, "member b back with a new member id", func(d describedGroup) bool {
		if len(d.members) != 2 || !d.exactCover("events", 4) {
			return false
		}
		for id, inst := range d.inst {
			if inst == "b" {
				_, old := before.members[id]
				return !old
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond) // time for any rebalance to start
	if got := scrapeMetric(t, b.MetricsAddr(), "kafka_coordinator_group_completed_rebalances_total"); got != rebalances {
		t.Errorf("completed rebalances went from %v to %v across a static restart", rebalances, got)
	}
	mu.Lock()
	defer mu.Unlock()
	if changes != 0 {
		t.Errorf("member a saw %d revocations across b's static restart", changes)
	}
	byInst := func(d describedGroup) map[string][]string {
		out := map[string][]string{}
		for id, inst := range d.inst {
			out[inst] = d.members[id]
		}
		return out
	}
	if b1, b2 := byInst(before), byInst(after); !slices.Equal(b1["b"], b2["b"]) || !slices.Equal(b1["a"], b2["a"]) {
		t.Errorf("assignments changed across a static restart: %v -> %v", b1, b2)
	}
}

// TestFranzCommittedOffsetsResume: a consumer commits offset 50 and closes; a new consumer of
// the group starts exactly at 50, also after the broker is closed and reopened on the same
// data directory.
func TestFranzCommittedOffsetsResume(t *testing.T) {
	dir := t.TempDir()
	b := startInProcess(t, dir, groupProps)
	createTopic(t, newClient(t, b.Addr()), "resume", 1, nil)
	produceN(t, b.Addr(), "resume", 100)

	commitAt(t, b.Addr(), "g3", "resume", 50)
	if got := firstOffset(t, b.Addr(), "g3", "resume"); got != 50 {
		t.Fatalf("after a consumer restart the group resumed at %d, want 50", got)
	}
	commitAt(t, b.Addr(), "g3", "resume", 70)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startInProcess(t, dir, groupProps)
	if got := firstOffset(t, b2.Addr(), "g3", "resume"); got != 70 {
		t.Fatalf("after a broker restart the group resumed at %d, want 70", got)
	}
}

// commitAt consumes topic with a franz-go group member of groupID from the committed offset
// (or the start) up to off-1, commits off and closes the member.
func commitAt(t *testing.T, addr, groupID, topic string, off int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last *kgo.Record
	for last == nil || last.Offset < off-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed up to %v, want offset %d", last, off-1)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < off {
				last = r
			}
		})
	}
	if err := cl.CommitRecords(ctx, last); err != nil {
		t.Fatal(err)
	}
}

// firstOffset returns the offset of the first record a new member of groupID consumes.
func firstOffset(t *testing.T, addr, groupID, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no record consumed")
		}
		if fs.NumRecords() > 0 {
			return fs.Records()[0].Offset
		}
	}
}
