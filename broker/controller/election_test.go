package controller

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// cluster is a pure test fixture: an image advanced by applying decided records, the way the
// FSM does, without Raft.
type cluster struct {
	t   *testing.T
	img *Image
	pol policy
	// reassigned and completed count the random walk's reassignments.
	reassigned, completed int
}

// newCluster registers and unfences brokers 1..n.
func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{t: t, img: emptyImage()}
	for _, id := range ids(n) {
		c.apply(c.must(registerRecords(c.img, c.pol, RegisterBrokerRecord{ID: id, Host: "127.0.0.1", Port: 9000 + id, Time: t0})))
		c.apply(c.must(unfenceRecords(c.img, c.pol, id, c.img.Brokers[id].Epoch, t0)))
	}
	return c
}

func (c *cluster) must(recs []Record, err error) []Record {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
	return recs
}

func (c *cluster) apply(recs []Record) {
	c.t.Helper()
	if len(recs) == 0 {
		return
	}
	img, err := applyRecords(c.img, c.img.Index+1, recs)
	if err != nil {
		c.t.Fatal(err)
	}
	c.img = img
}

// topic creates a topic with explicit assignments, all replicas in sync, replicas[0] leading.
func (c *cluster) topic(name string, configs map[string]string, assign ...[]int32) {
	c.apply([]Record{{Type: TypeCreateTopic, CreateTopic: &CreateTopicRecord{Name: name, ID: TopicID{byte(len(c.img.Topics) + 1)}, Configs: configs, Partitions: newPartitions(assign)}}})
}

// setISR has partition p of topic's leader set its ISR to isr.
func (c *cluster) setISR(topic string, p int32, isr []int32) {
	c.t.Helper()
	part := c.part(topic, p)
	c.apply([]Record{*buildChange(c.img, c.img.Topics[topic], p, part, part.Leader, isr, currentAssignment(part), false)})
}

func (c *cluster) fence(id int32) { c.apply(c.must(fenceRecords(c.img, c.pol, id))) }
func (c *cluster) unfence(id int32) {
	c.apply(c.must(unfenceRecords(c.img, c.pol, id, c.img.Brokers[id].Epoch, t0)))
}

// part returns partition p of topic.
func (c *cluster) part(topic string, p int32) *Partition { return c.img.Partition(topic, p) }

// want checks a partition's leader, ISR and epochs.
func (c *cluster) want(topic string, p int32, leader int32, isr []int32, leaderEpoch, partitionEpoch int32) {
	c.t.Helper()
	got := c.part(topic, p)
	if got.Leader != leader || !slices.Equal(got.ISR, isr) || got.LeaderEpoch != leaderEpoch || got.PartitionEpoch != partitionEpoch {
		c.t.Fatalf("%s-%d: got leader %d isr %v leaderEpoch %d partitionEpoch %d; want leader %d isr %v leaderEpoch %d partitionEpoch %d",
			topic, p, got.Leader, got.ISR, got.LeaderEpoch, got.PartitionEpoch, leader, isr, leaderEpoch, partitionEpoch)
	}
}

func TestElectLeader(t *testing.T) {
	live := func(ids ...int32) func(int32) bool { return func(id int32) bool { return slices.Contains(ids, id) } }
	for _, tc := range []struct {
		name        string
		replicas    []int32
		isr         []int32
		live        func(int32) bool
		unclean     bool
		wantLeader  int32
		wantISR     []int32
		wantUnclean bool
	}{
		{"first live in-sync replica in replica order", []int32{1, 2, 3}, []int32{3, 2}, live(2, 3), false, 2, []int32{3, 2}, false},
		{"skips dead in-sync replicas", []int32{1, 2, 3}, []int32{1, 2, 3}, live(3), false, 3, []int32{1, 2, 3}, false},
		{"live out-of-sync replica does not lead when unclean is off", []int32{1, 2, 3}, []int32{1}, live(2, 3), false, NoLeader, []int32{1}, false},
		{"live out-of-sync replica leads when unclean is on", []int32{1, 2, 3}, []int32{1}, live(3, 2), true, 2, []int32{2}, true},
		{"in-sync replica wins over unclean", []int32{1, 2, 3}, []int32{3}, live(2, 3), true, 3, []int32{3}, false},
		{"nothing live", []int32{1, 2}, []int32{1, 2}, live(), true, NoLeader, []int32{1, 2}, false},
	} {
		l, isr, u := electLeader(tc.replicas, tc.isr, tc.live, tc.unclean)
		if l != tc.wantLeader || !slices.Equal(isr, tc.wantISR) || u != tc.wantUnclean {
			t.Errorf("%s: got leader %d isr %v unclean %v; want %d %v %v", tc.name, l, isr, u, tc.wantLeader, tc.wantISR, tc.wantUnclean)
		}
	}
}

func TestFencingMovesLeadershipAndShrinksISR(t *testing.T) {
	c := newCluster(t, 3)
	c.topic("t", nil, []int32{1, 2, 3}, []int32{2, 3, 1}, []int32{3, 1, 2})
	c.fence(1)
	if !c.img.Brokers[1].Fenced {
		t.Fatal("broker 1 not fenced")
	}
	c.want("t", 0, 2, []int32{2, 3}, 1, 1) // led by 1: new leader from the ISR, both epochs bump
	c.want("t", 1, 2, []int32{2, 3}, 0, 1) // follower 1 leaves the ISR; leader epoch unchanged
	c.want("t", 2, 3, []int32{3, 2}, 0, 1)
	if s := c.img.Stats; s.LeaderElections != 1 || s.ISRShrinks != 3 || s.UncleanLeaderElections != 0 {
		t.Fatalf("stats %+v; want 1 election, 3 shrinks", s)
	}
	// Fencing an already fenced broker decides nothing.
	if recs := c.must(fenceRecords(c.img, c.pol, 1)); recs != nil {
		t.Fatalf("fencing twice decided %v", recs)
	}
}

func TestLastInSyncReplicaStaysInISR(t *testing.T) {
	c := newCluster(t, 3)
	c.topic("t", nil, []int32{1, 2}, []int32{2, 3})
	c.fence(2)
	c.want("t", 0, 1, []int32{1}, 0, 1)
	c.want("t", 1, 3, []int32{3}, 1, 1)
	c.fence(1)
	// Partition 0 has no live in-sync replica and unclean election is off: offline, ISR kept.
	c.want("t", 0, NoLeader, []int32{1}, 1, 2)
	if c.img.OfflinePartitions() != 1 {
		t.Fatalf("offline partitions %d, want 1", c.img.OfflinePartitions())
	}
	// Broker 2 returning does not lead: it is out of sync.
	c.unfence(2)
	c.want("t", 0, NoLeader, []int32{1}, 1, 2)
	// The last in-sync replica returning leads again.
	c.unfence(1)
	c.want("t", 0, 1, []int32{1}, 2, 3)
	if s := c.img.Stats; s.UncleanLeaderElections != 0 {
		t.Fatalf("unclean elections %d with unclean election off", s.UncleanLeaderElections)
	}
}

func TestUncleanLeaderElection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		topic   map[string]string
		broker  bool
		unclean bool
	}{
		{"off by default", nil, false, false},
		{"on by topic config", map[string]string{UncleanLeaderElectionConfig: "true"}, false, true},
		{"on by broker default", nil, true, true},
		{"topic config overrides broker default", map[string]string{UncleanLeaderElectionConfig: "false"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3)
			c.pol.uncleanDefault = tc.broker
			c.topic("t", tc.topic, []int32{1, 2, 3})
			// The leader shrinks the ISR to itself (followers lagging), then dies.
			c.setISR("t", 0, []int32{1})
			c.fence(1)
			if tc.unclean {
				c.want("t", 0, 2, []int32{2}, 1, 2)
				if c.img.Stats.UncleanLeaderElections != 1 {
					t.Fatalf("unclean elections %d, want 1", c.img.Stats.UncleanLeaderElections)
				}
			} else {
				c.want("t", 0, NoLeader, []int32{1}, 1, 2)
			}
		})
	}
}

func TestEnablingUncleanElectsOfflinePartition(t *testing.T) {
	c := newCluster(t, 2)
	c.topic("t", nil, []int32{1, 2})
	c.setISR("t", 0, []int32{1})
	c.fence(1)
	c.want("t", 0, NoLeader, []int32{1}, 1, 2)
	rec := c.must(func() ([]Record, error) {
		r, err := alterConfigsRecord(c.img, "t", map[string]string{UncleanLeaderElectionConfig: "true"}, nil, nil)
		if err != nil {
			return nil, err
		}
		return withRecords(c.img, c.pol, r)
	}())
	c.apply(rec)
	c.want("t", 0, 2, []int32{2}, 2, 3)
}

func TestReRegistrationFencesOldIncarnation(t *testing.T) {
	c := newCluster(t, 3)
	c.topic("t", nil, []int32{1, 2, 3})
	old := c.img.Brokers[1].Epoch
	c.apply(c.must(registerRecords(c.img, c.pol, RegisterBrokerRecord{ID: 1, Host: "127.0.0.1", Port: 9001, Time: t0})))
	b := c.img.Brokers[1]
	if b.Epoch <= old || !b.Fenced {
		t.Fatalf("re-registered broker: epoch %d (was %d) fenced %v; want a larger epoch, fenced", b.Epoch, old, b.Fenced)
	}
	c.want("t", 0, 2, []int32{2, 3}, 1, 1)
	// A heartbeat with the old epoch does not unfence.
	if recs := c.must(unfenceRecords(c.img, c.pol, 1, old, t0)); recs != nil {
		t.Fatalf("stale epoch unfenced: %v", recs)
	}
}

func TestPreferredLeaderRebalance(t *testing.T) {
	c := newCluster(t, 3)
	c.topic("t", nil, []int32{1, 2, 3}, []int32{2, 3, 1})
	c.fence(1)
	c.unfence(1)
	c.want("t", 0, 2, []int32{2, 3}, 1, 1)
	// Live but out of sync: no move.
	if recs := preferredLeaderRecords(c.img); recs != nil {
		t.Fatalf("moved leadership to an out-of-sync preferred replica: %v", recs)
	}
	// The leader re-admits 1 to the ISR; now the preferred replica takes over.
	p := c.part("t", 0)
	r, _, err := alterPartitionRecord(c.img, AlterPartitionRequest{Topic: "t", Partition: 0, BrokerID: 2, BrokerEpoch: -1, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{2, 3, 1}})
	if err != nil {
		t.Fatal(err)
	}
	c.apply([]Record{*r})
	c.apply(preferredLeaderRecords(c.img))
	c.want("t", 0, 1, []int32{2, 3, 1}, 2, 3)
	c.want("t", 1, 2, []int32{2, 3}, 0, 1) // already led by its preferred replica
	if recs := preferredLeaderRecords(c.img); recs != nil {
		t.Fatalf("second rebalance decided %v", recs)
	}
}

func TestExpiredBrokers(t *testing.T) {
	c := newCluster(t, 4)
	c.fence(4)
	since := t0
	hb := map[int32]time.Time{1: t0.Add(5 * time.Second), 2: t0.Add(9 * time.Second)}
	for _, tc := range []struct {
		now  time.Duration
		want []int32
	}{
		{9 * time.Second, nil},                  // broker 3 has no heartbeat: a full session from since
		{10*time.Second + 1, []int32{3}},        // ... which has now run out
		{15*time.Second + 1, []int32{1, 3}},     // broker 1's session ran out too
		{30 * time.Second, []int32{1, 2, 3}},    // broker 4 is fenced already
		{-time.Second, nil},                     // clock behind the heartbeats
		{10*time.Second - time.Nanosecond, nil}, // exactly at the edge: not expired
		{10*time.Second + time.Nanosecond, []int32{3}},
	} {
		got := expiredBrokers(c.img, hb, since, t0.Add(tc.now), 10*time.Second)
		if !slices.Equal(got, tc.want) {
			t.Errorf("now=%v: expired %v, want %v", tc.now, got, tc.want)
		}
	}
}
