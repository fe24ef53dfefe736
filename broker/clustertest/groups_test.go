package clustertest_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// groupOpts are the broker settings of the group tests: no initial rebalance delay, so a
// group forms as soon as its first member joins.
var groupOpts = []clustertest.Option{clustertest.Set("group.initial.rebalance.delay.ms", "0")}

// produceSpread writes n records to every partition of topic; the value of the record at
// offset i of partition p is "p-i".
func produceSpread(t *testing.T, c *clustertest.Cluster, topic string, partitions int32, from, n int) {
	t.Helper()
	cl := manual(c, kgo.AllISRAcks())
	var rs []*kgo.Record
	for p := range partitions {
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(value(p, int64(i)))})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range cl.ProduceSync(ctx, rs...) {
		if r.Err != nil {
			t.Fatalf("produce to %s-%d: %v", topic, r.Record.Partition, r.Err)
		}
		if want := value(r.Record.Partition, r.Record.Offset); string(r.Record.Value) != want {
			t.Fatalf("record %q landed at offset %d of partition %d (want value %q there): the topic was not empty",
				r.Record.Value, r.Record.Offset, r.Record.Partition, want)
		}
	}
}

func value(p int32, off int64) string { return fmt.Sprintf("%d-%d", p, off) }

// groupMember is a franz-go group consumer with manual commits that the test closes itself
// (or the cleanup does).
type groupMember struct {
	*kgo.Client
	once sync.Once
}

func newMember(t *testing.T, c *clustertest.Cluster, group, topic string, opts ...kgo.Opt) *groupMember {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(c.Bootstrap()...), kgo.DisableIdempotentWrite(),
		kgo.MetadataMinAge(50 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	m := &groupMember{Client: cl}
	t.Cleanup(m.close)
	return m
}

func (m *groupMember) close() { m.once.Do(m.Client.Close) }

// coordinator asks a live broker which broker coordinates group, until one answers.
func coordinator(t *testing.T, c *clustertest.Cluster, group string) int32 {
	t.Helper()
	var id int32
	c.CheckFor(30*time.Second, "a coordinator of "+group, func() error {
		var err error
		id, err = findCoordinator(c, group)
		return err
	})
	return id
}

// findCoordinator asks a live broker once which live broker coordinates group.
func findCoordinator(c *clustertest.Cluster, group string) (int32, error) {
	var seeds []string
	for _, id := range c.Others() {
		if c.Node(id).Running() {
			seeds = append(seeds, c.Node(id).Addr())
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestRetries(2))
	if err != nil {
		return -1, err
	}
	defer cl.Close()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return -1, err
	}
	if !c.Node(resp.NodeID).Running() {
		return -1, errf("coordinator is %d, which is down", resp.NodeID)
	}
	return resp.NodeID, nil
}

// committedOffsets fetches group's committed offsets of topic from its coordinator
// (partition → offset; -1 when none).
func committedOffsets(t *testing.T, c *clustertest.Cluster, group, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	c.CheckFor(30*time.Second, "committed offsets of "+group, func() error {
		// A fresh client each time: a client keeps asking a coordinator it found until a
		// request fails, even while that broker is down.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RequestRetries(2))
		if err != nil {
			return err
		}
		defer cl.Close()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = group
		req.RequireStable = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return err
		}
		clear(out)
		for _, rt := range resp.Topics {
			if rt.Topic != topic {
				continue
			}
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return fmt.Errorf("partition %d: %w", rp.Partition, err)
				}
				out[rp.Partition] = rp.Offset
			}
		}
		return nil
	})
	return out
}

// consumed is what group consumers polled, per partition.
type consumed struct {
	mu      sync.Mutex
	offsets map[int32][]int64
	last    map[int32]*kgo.Record
}

func newConsumed() *consumed {
	return &consumed{offsets: map[int32][]int64{}, last: map[int32]*kgo.Record{}}
}

// add records fs, failing on a record whose value is not the one produced at its offset.
func (cs *consumed) add(t *testing.T, fs kgo.Fetches) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	fs.EachRecord(func(r *kgo.Record) {
		if want := value(r.Partition, r.Offset); string(r.Value) != want {
			t.Errorf("partition %d offset %d: got value %q, want %q", r.Partition, r.Offset, r.Value, want)
		}
		cs.offsets[r.Partition] = append(cs.offsets[r.Partition], r.Offset)
		cs.last[r.Partition] = r
	})
}

// reached reports whether every partition has been read up to end (exclusive).
func (cs *consumed) reached(partitions int32, end int64) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for p := range partitions {
		offs := cs.offsets[p]
		if len(offs) == 0 || offs[len(offs)-1] < end-1 {
			return errf("partition %d read to %v of %d", p, lastOr(offs), end)
		}
	}
	return nil
}

func lastOr(offs []int64) any {
	if len(offs) == 0 {
		return "nothing"
	}
	return offs[len(offs)-1]
}

// pollUntil polls m into cs until cond holds, failing after timeout.
func pollUntil(t *testing.T, m *groupMember, cs *consumed, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		fs := m.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no %s within %s: %v", what, timeout, cond())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("poll %s-%d: %v", topic, p, err)
		})
		cs.add(t, fs)
		if cond() == nil {
			return
		}
	}
}

// TestGroupResumesAfterCoordinatorKill: a franz-go group consumer on a 3-broker cluster reads
// a 6-partition RF=3 topic and commits a random cut per partition; the group's coordinator is
// killed with SIGKILL; a fresh consumer of the group starts exactly at the committed offsets
// (nothing before is re-delivered, nothing after skipped) and commits again at the new
// coordinator; after the killed broker restarts every committed offset still holds, and once
// it is back in the ISR and the second coordinator is killed too, a third consumer resumes at
// the second's commits.
func TestGroupResumesAfterCoordinatorKill(t *testing.T) {
	const parts, perPart = 6, 200
	c := clustertest.Start(t, 3, groupOpts...)
	topic, group := "gfail", "gfail-"+strconv.Itoa(c.Rand.IntN(1000))
	c.CreateTopic(topic, parts, 3, map[string]string{"min.insync.replicas": "2"})
	produceSpread(t, c, topic, parts, 0, perPart)

	first := newMember(t, c, group, topic)
	cs := newConsumed()
	pollUntil(t, first, cs, 30*time.Second, "records of every partition", func() error { return cs.reached(parts, perPart) })
	cuts := map[int32]int64{}
	var toCommit []*kgo.Record
	for p := range int32(parts) {
		cut := 1 + c.Rand.Int64N(perPart-1)
		cuts[p] = cut
		toCommit = append(toCommit, &kgo.Record{Topic: topic, Partition: p, Offset: cut - 1,
			LeaderEpoch: cs.last[p].LeaderEpoch})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := first.CommitRecords(ctx, toCommit...); err != nil {
		t.Fatalf("commit %v: %v", cuts, err)
	}
	if got := committedOffsets(t, c, group, topic); !sameOffsets(got, cuts) {
		t.Fatalf("committed offsets %v, want %v", got, cuts)
	}
	first.close()

	coord := coordinator(t, c, group)
	t.Logf("group %s: coordinator %d, committed %v", group, coord, cuts)
	killedAt := time.Now()
	c.Kill(coord)

	second := newMember(t, c, group, topic)
	cs2 := newConsumed()
	pollUntil(t, second, cs2, 40*time.Second, "records after the coordinator kill", func() error { return cs2.reached(parts, perPart) })
	for p := range int32(parts) {
		checkResume(t, p, cs2.offsets[p], cuts[p], perPart)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel2()
	if err := second.CommitUncommittedOffsets(ctx2); err != nil {
		t.Fatalf("commit at the new coordinator: %v", err)
	}
	failover := time.Since(killedAt)
	next := coordinator(t, c, group)
	t.Logf("coordinator %d killed; new coordinator %d; kill → consumer committed again: %s", coord, next, failover)
	if next == coord {
		t.Fatalf("coordinator still %d after its kill", coord)
	}
	ends := map[int32]int64{}
	for p := range int32(parts) {
		ends[p] = perPart
	}
	if got := committedOffsets(t, c, group, topic); !sameOffsets(got, ends) {
		t.Fatalf("committed offsets after the failover %v, want %v", got, ends)
	}
	second.close()

	c.Restart(coord)
	for p := range int32(parts) {
		c.WaitLeader(topic, p)
	}
	if got := committedOffsets(t, c, group, topic); !sameOffsets(got, ends) {
		t.Fatalf("committed offsets after broker %d restarted %v, want %v", coord, got, ends)
	}
	// Move the group once more, so that a coordinator loads the groups from a log it
	// replicated: wait until the restarted broker is back in the ISR of the group's
	// __consumer_offsets partition and of every partition of the topic (else a partition
	// whose ISR held only the next victim goes offline with it), then kill the current
	// coordinator.
	op := offsetsPartition(group)
	c.CheckFor(30*time.Second, "the restarted broker in the ISR of __consumer_offsets and the topic", func() error {
		st, err := c.Partition("__consumer_offsets", op)
		if err != nil {
			return err
		}
		if !slices.Contains(st.ISR, coord) {
			return errf("__consumer_offsets-%d ISR %v", op, st.ISR)
		}
		for p := range int32(parts) {
			st, err := c.Partition(topic, p)
			if err != nil {
				return err
			}
			if !slices.Contains(st.ISR, coord) {
				return errf("%s-%d ISR %v", topic, p, st.ISR)
			}
		}
		return nil
	})
	c.Kill(next)
	t.Logf("coordinator %d killed too; coordinator now %d", next, coordinator(t, c, group))
	produceSpread(t, c, topic, parts, perPart, 20)
	third := newMember(t, c, group, topic)
	cs3 := newConsumed()
	pollUntil(t, third, cs3, 30*time.Second, "new records after the restart", func() error { return cs3.reached(parts, perPart+20) })
	for p := range int32(parts) {
		checkResume(t, p, cs3.offsets[p], perPart, perPart+20)
	}
}

// offsetsPartition is group's __consumer_offsets partition of 50: abs(hashCode) % 50 with
// Java's String.hashCode (group ids here are ASCII).
func offsetsPartition(group string) int32 {
	var h int32
	for _, r := range group {
		h = 31*h + int32(r)
	}
	if h < 0 {
		h = -h
	}
	return h % 50
}

// checkResume fails unless offs, the offsets a consumer read of a partition, start at from
// and cover every offset up to end (exclusive).
func checkResume(t *testing.T, p int32, offs []int64, from, end int64) {
	t.Helper()
	if len(offs) == 0 {
		t.Errorf("partition %d: nothing read, want %d..%d", p, from, end-1)
		return
	}
	if offs[0] != from {
		t.Errorf("partition %d: resumed at offset %d, want the committed offset %d", p, offs[0], from)
	}
	seen := map[int64]bool{}
	for _, o := range offs {
		if o < from {
			t.Errorf("partition %d: offset %d re-delivered though %d was committed", p, o, from)
		}
		seen[o] = true
	}
	for o := from; o < end; o++ {
		if !seen[o] {
			t.Errorf("partition %d: offset %d skipped", p, o)
			return
		}
	}
}

func sameOffsets(got, want map[int32]int64) bool {
	if len(got) != len(want) {
		return false
	}
	for p, o := range want {
		if got[p] != o {
			return false
		}
	}
	return true
}

// describeGroup returns group's state and, per member, the partitions of topic assigned to
// it, as its coordinator describes them.
func describeGroup(cl *kgo.Client, group, topic string) (string, map[string][]int32, error) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return "", nil, err
	}
	if len(resp.Groups) != 1 {
		return "", nil, errf("%d groups described", len(resp.Groups))
	}
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return "", nil, err
	}
	out := map[string][]int32{}
	for _, m := range g.Members {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.MemberAssignment); err != nil {
			return "", nil, fmt.Errorf("member %s assignment: %w", m.MemberID, err)
		}
		out[m.MemberID] = nil
		for _, t := range a.Topics {
			if t.Topic == topic {
				out[m.MemberID] = append(out[m.MemberID], t.Partitions...)
			}
		}
	}
	return g.State, out, nil
}

// stableAndAssigned is nil once group is Stable with members members that own every
// partition of topic exactly once.
func stableAndAssigned(cl *kgo.Client, group, topic string, members int, partitions int32) error {
	state, assigned, err := describeGroup(cl, group, topic)
	if err != nil {
		return err
	}
	if state != "Stable" || len(assigned) != members {
		return errf("group %s is %s with %d members, want Stable with %d", group, state, len(assigned), members)
	}
	owners := map[int32]int{}
	for _, ps := range assigned {
		for _, p := range ps {
			owners[p]++
		}
	}
	for p := range partitions {
		if owners[p] != 1 {
			return errf("partition %d has %d owners: %v", p, owners[p], assigned)
		}
	}
	return nil
}

// TestGroupConsumesThroughCoordinatorKill: three franz-go members share a 6-partition RF=3
// topic, committing after every poll, while their coordinator is killed with SIGKILL. The
// members carry on at the new coordinator: commits succeed again, the group ends Stable with
// every partition owned by one member, every record is read, and the final commits are the
// log end offsets.
func TestGroupConsumesThroughCoordinatorKill(t *testing.T) {
	c := clustertest.Start(t, 3, groupOpts...)
	consumeThroughFault(t, c, "gthrough-"+strconv.Itoa(c.Rand.IntN(1000)), "killed", c.Kill)
}

// TestGroupConsumesThroughCoordinatorFencing is TestGroupConsumesThroughCoordinatorKill with
// a coordinator that stays up: its links to the active controller are cut, so the controller
// fences it and moves its partitions while it keeps serving the members connected to it,
// until it learns the new leaders and hands the group over (NOT_COORDINATOR).
func TestGroupConsumesThroughCoordinatorFencing(t *testing.T) {
	c := clustertest.Start(t, 3, groupOpts...)
	ctl := c.Controller()
	group := ""
	for i := range 100 {
		g := "gfence-" + strconv.Itoa(c.Rand.IntN(1000)) + "-" + strconv.Itoa(i)
		if co := coordinator(t, c, g); co != ctl && co > 0 {
			group = g
			break
		}
	}
	if group == "" {
		t.Fatalf("every group probed is coordinated by the controller %d", ctl)
	}
	consumeThroughFault(t, c, group, "cut off from controller "+strconv.Itoa(int(ctl)), func(coord int32) {
		c.Cut(coord, ctl)
		c.CutControl(coord, ctl)
		t.Cleanup(func() { c.Heal(coord, ctl); c.HealControl(coord, ctl) })
	})
}

// consumeThroughFault runs three franz-go members of group over a 6-partition RF=3 topic,
// committing after every poll, applies fault to their coordinator once consumption is under
// way, and checks that they carry on at a new coordinator (see
// TestGroupConsumesThroughCoordinatorKill).
func consumeThroughFault(t *testing.T, c *clustertest.Cluster, group, faultName string, fault func(coord int32)) {
	t.Helper()
	const parts, perPart, members = 6, 2000, 3
	topic := "gthrough"
	c.CreateTopic(topic, parts, 3, map[string]string{"min.insync.replicas": "2"})
	produceSpread(t, c, topic, parts, 0, perPart)

	cs := newConsumed()
	var mu sync.Mutex
	var killedAt, recommitAt time.Time // only the test goroutine touches these
	commitErrs := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range members {
		m := newMember(t, c, group, topic)
		wg.Go(func() {
			defer m.close()
			for ctx.Err() == nil {
				fs := m.PollRecords(ctx, 20)
				cs.add(t, fs)
				time.Sleep(30 * time.Millisecond)
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				err := m.CommitUncommittedOffsets(cctx)
				ccancel()
				mu.Lock()
				if err != nil && ctx.Err() == nil {
					commitErrs[errName(err)]++
				}
				mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	admin := c.Client()
	c.CheckFor(30*time.Second, "a stable group", func() error {
		return stableAndAssigned(admin, group, topic, members, parts)
	})
	c.CheckFor(30*time.Second, "consumption under way", func() error {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		n := 0
		for _, offs := range cs.offsets {
			n += len(offs)
		}
		if n < parts*perPart/6 {
			return errf("%d records read", n)
		}
		return nil
	})
	coord := coordinator(t, c, group)
	_, before, err := describeGroup(admin, group, topic)
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	time.Sleep(time.Duration(c.Rand.IntN(300)) * time.Millisecond)
	killedAt = time.Now()
	cs.mu.Lock()
	atKill := map[int32]int{}
	for p, offs := range cs.offsets {
		atKill[p] = len(offs)
	}
	cs.mu.Unlock()
	fault(coord)

	// The members committed again once another broker coordinates the group and a committed
	// offset passes what was read before the fault.
	c.CheckFor(30*time.Second, "a commit after the fault", func() error {
		if now, err := findCoordinator(c, group); err != nil || now == coord {
			return errf("coordinator %d (%v)", now, err)
		}
		got := committedOffsets(t, c, group, topic)
		for p, n := range got {
			cs.mu.Lock()
			frontier := int64(-1)
			if k := atKill[p]; k > 0 {
				frontier = slices.Max(cs.offsets[p][:k])
			}
			cs.mu.Unlock()
			if n > frontier+1 {
				recommitAt = time.Now()
				return nil
			}
		}
		return errf("committed %v, nothing past what was read before the fault", got)
	})
	admin2 := c.Client()
	c.CheckFor(30*time.Second, "every record read", func() error { return cs.reached(parts, perPart) })
	c.CheckFor(30*time.Second, "a stable group at the new coordinator", func() error {
		return stableAndAssigned(admin2, group, topic, members, parts)
	})
	ends := map[int32]int64{}
	for p := range int32(parts) {
		ends[p] = perPart
	}
	c.CheckFor(20*time.Second, "final commits at the log end", func() error {
		if got := committedOffsets(t, c, group, topic); !sameOffsets(got, ends) {
			return errf("committed %v, want %v", got, ends)
		}
		return nil
	})
	next := coordinator(t, c, group)
	_, after, err := describeGroup(admin2, group, topic)
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	if next == coord {
		t.Errorf("coordinator still %d after it was %s", coord, faultName)
	}
	t.Logf("coordinator %d %s; new coordinator %d; fault → first commit after it: %s; commit errors %v",
		coord, faultName, next, recommitAt.Sub(killedAt), commitErrs)
	mu.Unlock()
	kept := 0
	for id := range before {
		if _, ok := after[id]; ok {
			kept++
		}
	}
	// The new coordinator took the group over with its members (their sessions restart on
	// loading): none was expired and had to join again under a new member id.
	if kept != members {
		t.Errorf("%d of %d members kept their member id through the failover", kept, members)
	}
	dups, dupsAfterKill := 0, 0
	for p := range int32(parts) {
		offs := cs.offsets[p]
		seen := map[int64]bool{}
		for i, o := range offs {
			if seen[o] {
				dups++
				if i >= atKill[p] {
					dupsAfterKill++
				}
			}
			seen[o] = true
		}
		for o := range int64(perPart) {
			if !seen[o] {
				t.Errorf("partition %d: offset %d never read", p, o)
				break
			}
		}
	}
	t.Logf("%d records read twice (re-delivered after a rebalance from the last commit), %d of them after the fault", dups, dupsAfterKill)
}
