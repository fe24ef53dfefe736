package controller

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
)

// quorum is a fixture of in-process controller nodes on 127.0.0.1 with temp data dirs, read
// like a scenario: q.waitActive(), q.stop(id), q.start(id), checkFor(...). Every node and
// heartbeater is stopped in t.Cleanup.
type quorum struct {
	t         testing.TB
	tweak     func(*Config)
	voters    map[int32]string
	observers map[int32]string
	dirs      map[int32]string
	logs      *testLog
	base      string // parent of the data dirs; removed after the nodes stop

	mu    sync.Mutex
	nodes map[int32]*Controller // running nodes. mu.
	beats map[int32]chan struct{}
	wg    sync.WaitGroup
}

// fastRaft is the test timing: raft timeouts of 300ms, quick snapshots, short sessions.
func fastRaft(c *Config) {
	c.RaftHeartbeatTimeout = 300 * time.Millisecond
	c.RaftElectionTimeout = 300 * time.Millisecond
	c.ApplyTimeout = 2 * time.Second
	c.BrokerHeartbeatInterval = 100 * time.Millisecond
}

// newQuorum starts voters 1..nVoters and observers nVoters+1..nVoters+nObservers.
func newQuorum(t testing.TB, nVoters, nObservers int, tweak func(*Config)) *quorum {
	q := &quorum{t: t, tweak: tweak, voters: map[int32]string{}, observers: map[int32]string{}, dirs: map[int32]string{},
		nodes: map[int32]*Controller{}, beats: map[int32]chan struct{}{}, logs: &testLog{t: t}}
	// TempDir before Cleanup: cleanups run last-in first-out, so the nodes stop before their
	// data dirs are removed.
	q.base = t.TempDir()
	t.Cleanup(q.close)
	lns := map[int32]net.Listener{}
	for id := int32(1); id <= int32(nVoters+nObservers); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id] = ln
		if id <= int32(nVoters) {
			q.voters[id] = ln.Addr().String()
		} else {
			q.observers[id] = ln.Addr().String()
		}
		q.dirs[id] = filepath.Join(q.base, fmt.Sprint("node-", id))
	}
	for id := int32(1); id <= int32(nVoters+nObservers); id++ {
		q.startOn(id, lns[id])
	}
	return q
}

func (q *quorum) addr(id int32) string {
	if a, ok := q.voters[id]; ok {
		return a
	}
	return q.observers[id]
}

func (q *quorum) config(id int32, ln net.Listener) Config {
	cfg := Config{NodeID: id, RaftAddr: q.addr(id), RaftListener: ln, Voters: q.voters, Observers: q.observers,
		DataDir: q.dirs[id], Logger: slog.New(slog.NewTextHandler(q.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	fastRaft(&cfg)
	if q.tweak != nil {
		q.tweak(&cfg)
	}
	return cfg
}

func (q *quorum) startOn(id int32, ln net.Listener) *Controller {
	q.t.Helper()
	c, err := New(q.config(id, ln))
	if err != nil {
		q.t.Fatalf("start node %d: %v", id, err)
	}
	q.mu.Lock()
	q.nodes[id] = c
	q.mu.Unlock()
	return c
}

// start restarts node id on its data dir and address.
func (q *quorum) start(id int32) *Controller {
	q.t.Helper()
	ln, err := net.Listen("tcp", q.addr(id))
	if err != nil {
		q.t.Fatalf("restart node %d: %v", id, err)
	}
	return q.startOn(id, ln)
}

// stop shuts node id down, as a crash of the process would stop it answering.
func (q *quorum) stop(id int32) {
	q.t.Helper()
	q.mu.Lock()
	c := q.nodes[id]
	delete(q.nodes, id)
	q.mu.Unlock()
	if err := c.Shutdown(); err != nil {
		q.t.Fatalf("stop node %d: %v", id, err)
	}
}

func (q *quorum) node(id int32) *Controller {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nodes[id]
}

func (q *quorum) running() []*Controller {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*Controller
	for _, c := range q.nodes {
		out = append(out, c)
	}
	return out
}

// active returns the single active controller, or an error if there is none or more than one.
func (q *quorum) active() (*Controller, error) {
	var act []*Controller
	for _, c := range q.running() {
		if c.ActiveController() {
			act = append(act, c)
		}
	}
	if len(act) != 1 {
		return nil, fmt.Errorf("%d active controllers", len(act))
	}
	return act[0], nil
}

// waitActive waits up to 10s for exactly one active controller and returns it.
func (q *quorum) waitActive() *Controller {
	q.t.Helper()
	var c *Controller
	checkFor(q.t, 10*time.Second, 20*time.Millisecond, func() (err error) {
		c, err = q.active()
		return err
	})
	return c
}

// register registers broker id through the active controller and starts heartbeating for it
// every 100ms to whichever node is active.
func (q *quorum) register(id int32) int64 {
	q.t.Helper()
	epoch, err := q.waitActive().RegisterBroker(Registration{ID: id, Host: "127.0.0.1", Port: 9090 + id})
	if err != nil {
		q.t.Fatalf("register broker %d: %v", id, err)
	}
	q.heartbeat(id, epoch)
	return epoch
}

// heartbeat starts broker id's heartbeat loop.
func (q *quorum) heartbeat(id int32, epoch int64) {
	stop := make(chan struct{})
	q.mu.Lock()
	q.beats[id] = stop
	q.mu.Unlock()
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if c, err := q.active(); err == nil {
				c.Heartbeat(id, epoch)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// silence stops broker id's heartbeats, as if the broker died.
func (q *quorum) silence(id int32) {
	q.mu.Lock()
	stop := q.beats[id]
	delete(q.beats, id)
	q.mu.Unlock()
	if stop != nil {
		close(stop)
	}
}

func (q *quorum) close() {
	q.mu.Lock()
	for id, stop := range q.beats {
		close(stop)
		delete(q.beats, id)
	}
	q.mu.Unlock()
	q.wg.Wait()
	for _, c := range q.running() {
		c.Shutdown()
	}
	q.logs.stop()
}

// waitImage waits until node id's image satisfies ok.
func (q *quorum) waitImage(id int32, what string, ok func(*Image) bool) *Image {
	q.t.Helper()
	var img *Image
	checkFor(q.t, 10*time.Second, 20*time.Millisecond, func() error {
		img = q.node(id).Image()
		if !ok(img) {
			return fmt.Errorf("node %d: no image with %s (index %d)", id, what, img.Index)
		}
		return nil
	})
	return img
}

// checkFor retries f every step until it returns nil, failing the test after total.
func checkFor(t testing.TB, total, step time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(step)
	}
}

// testLog collects node logs and prints them only when the test fails, and never after it.
type testLog struct {
	t    testing.TB
	mu   sync.Mutex
	buf  []byte
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.buf = append(l.buf, p...)
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	if l.t.Failed() || os.Getenv("CONTROLLER_TEST_LOG") != "" {
		l.t.Logf("node logs:\n%s", l.buf)
	}
}

var _ io.Writer = (*testLog)(nil)

func hasTopic(name string, parts int) func(*Image) bool {
	return func(img *Image) bool { t := img.Topics[name]; return t != nil && len(t.Partitions) == parts }
}

func TestQuorumReplicatesAndSurvivesLeaderLoss(t *testing.T) {
	q := newQuorum(t, 3, 0, nil)
	act := q.waitActive()
	for id := int32(1); id <= 3; id++ {
		q.register(id)
	}
	q.waitImage(act.NodeID(), "3 live brokers", func(img *Image) bool { return len(img.LiveBrokers()) == 3 })
	created, err := act.CreateTopic("orders", 3, 3, map[string]string{"retention.ms": "60000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for id := int32(1); id <= 3; id++ {
		img := q.waitImage(id, "orders", hasTopic("orders", 3))
		if got := img.Topics["orders"]; got.ID != created.ID || !slices.Equal(got.Partitions[2].Replicas, created.Partitions[2].Replicas) {
			t.Fatalf("node %d sees %+v, created %+v", id, got, created)
		}
	}

	// A follower refuses mutations and names the active controller.
	for _, c := range q.running() {
		if c == act {
			continue
		}
		_, err := c.CreateTopic("x", 1, 1, nil, false)
		var nc *NotControllerError
		if !errors.As(err, &nc) || nc.LeaderID != act.NodeID() || !errors.Is(err, ErrNotController) {
			t.Fatalf("node %d CreateTopic: %v; want NOT_CONTROLLER naming %d", c.NodeID(), err, act.NodeID())
		}
	}

	old := act.NodeID()
	killed := time.Now()
	q.stop(old)
	act = q.waitActive()
	t.Logf("active controller %d stopped; %d active after %v", old, act.NodeID(), time.Since(killed).Round(time.Millisecond))
	if act.NodeID() == old {
		t.Fatal("stopped node still active")
	}
	if _, err := act.CreateTopic("after", 2, 2, nil, false); err != nil {
		t.Fatalf("create after failover: %v", err)
	}
	for _, c := range q.running() {
		q.waitImage(c.NodeID(), "after", hasTopic("after", 2))
	}

	// The stopped node comes back on its data dir and catches up.
	q.start(old)
	img := q.waitImage(old, "after", hasTopic("after", 2))
	if img.Topics["orders"].ID != created.ID {
		t.Fatal("restarted node lost topic orders")
	}
	q.waitActive()
}

func TestQuorumFullRestartFromSnapshots(t *testing.T) {
	q := newQuorum(t, 3, 0, func(c *Config) {
		c.SnapshotThreshold = 4
		c.SnapshotInterval = 50 * time.Millisecond
		c.TrailingLogs = 2
	})
	act := q.waitActive()
	q.register(1)
	q.register(2)
	q.waitImage(act.NodeID(), "2 live brokers", func(img *Image) bool { return len(img.LiveBrokers()) == 2 })
	// Node 3 misses everything from here on and must catch up from a snapshot.
	lagging := int32(3)
	if act.NodeID() == lagging {
		lagging = 1
	}
	q.stop(lagging)
	act = q.waitActive()
	for i := range 12 {
		if _, err := act.CreateTopic(fmt.Sprintf("t%d", i), 2, 2, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		snaps, err := os.ReadDir(q.dirs[act.NodeID()] + "/snapshots")
		if err != nil || len(snaps) == 0 {
			return fmt.Errorf("no snapshot on node %d yet (%v)", act.NodeID(), err)
		}
		return nil
	})
	q.start(lagging)
	want := q.waitImage(lagging, "t11", hasTopic("t11", 2))
	if len(want.Topics) != 12 {
		t.Fatalf("lagging node caught up to %d topics, want 12", len(want.Topics))
	}

	// Every node stops and starts again: state comes back from snapshots and logs.
	for id := int32(1); id <= 3; id++ {
		q.stop(id)
	}
	for id := int32(1); id <= 3; id++ {
		q.start(id)
	}
	act = q.waitActive()
	for id := int32(1); id <= 3; id++ {
		img := q.waitImage(id, "12 topics", func(img *Image) bool { return len(img.Topics) == 12 })
		if img.Topics["t7"].ID != want.Topics["t7"].ID || len(img.Brokers) != 2 {
			t.Fatalf("node %d restored a different image", id)
		}
	}
	if _, err := act.CreateTopic("after-restart", 1, 1, nil, false); err != nil {
		t.Fatal(err)
	}
}

func TestObserversReplicateTheImage(t *testing.T) {
	q := newQuorum(t, 3, 1, nil)
	act := q.waitActive()
	// Node 5 is in no one's config; it joins by registering with its Raft address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	q.observers[5] = ln.Addr().String()
	q.dirs[5] = filepath.Join(q.base, "node-5")
	q.startOn(5, ln)
	if _, err := act.RegisterBroker(Registration{ID: 5, Host: "127.0.0.1", Port: 9095, RaftAddr: q.observers[5]}); err != nil {
		t.Fatal(err)
	}
	q.register(1)
	q.waitImage(act.NodeID(), "broker 1 live", func(img *Image) bool { return img.Live(1) })
	if _, err := act.CreateTopic("seen-by-observers", 1, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int32{4, 5} {
		q.waitImage(id, "the topic", hasTopic("seen-by-observers", 1))
		if q.node(id).ActiveController() {
			t.Fatalf("observer %d is active", id)
		}
	}
	cf := act.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	voters, nonvoters := 0, 0
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage.String() == "Voter" {
			voters++
		} else {
			nonvoters++
		}
	}
	if voters != 3 || nonvoters != 2 {
		t.Fatalf("raft configuration %+v: want 3 voters and 2 non-voters", cf.Configuration().Servers)
	}
	var nc *NotControllerError
	if _, err := q.node(4).CreateTopic("x", 1, 1, nil, false); !errors.As(err, &nc) || nc.LeaderID != act.NodeID() {
		t.Fatalf("observer CreateTopic: %v; want NOT_CONTROLLER naming %d", err, act.NodeID())
	}
}

// leaderOf returns the leader of partition p of topic on node id's image.
func (q *quorum) leaderOf(id int32, topic string, p int32) *Partition {
	return q.node(id).Image().Partition(topic, p)
}

func TestSessionTimeoutFencesAndPreferredLeaderReturns(t *testing.T) {
	q := newQuorum(t, 3, 0, func(c *Config) {
		c.BrokerSessionTimeout = time.Second
		c.LeaderImbalanceCheckInterval = 200 * time.Millisecond
	})
	act := q.waitActive()
	epochs := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		epochs[id] = q.register(id)
	}
	q.waitImage(act.NodeID(), "3 live brokers", func(img *Image) bool { return len(img.LiveBrokers()) == 3 })
	top, err := act.CreateTopic("t", 3, 3, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	victim := top.Partitions[0].Leader
	silenced := time.Now()
	q.silence(victim)
	img := q.waitImage(act.NodeID(), "victim fenced and partition 0 moved", func(img *Image) bool {
		p := img.Partition("t", 0)
		return img.Brokers[victim].Fenced && p.Leader != victim && p.Leader != NoLeader
	})
	fencedAfter := time.Since(silenced)
	t.Logf("broker %d fenced and partition 0 moved after %v (session timeout 1s)", victim, fencedAfter.Round(time.Millisecond))
	if fencedAfter < 900*time.Millisecond {
		t.Fatalf("fenced after %v, before its 1s session ran out", fencedAfter)
	}
	p0 := img.Partition("t", 0)
	if p0.LeaderEpoch != 1 || p0.InISR(victim) || p0.Leader != top.Partitions[0].Replicas[1] {
		t.Fatalf("partition 0 after fencing: %+v; want leader %d, leader epoch 1, ISR without %d", p0, top.Partitions[0].Replicas[1], victim)
	}
	for i := range 3 {
		if img.Partition("t", int32(i)).InISR(victim) {
			t.Fatalf("partition %d still has fenced broker %d in its ISR", i, victim)
		}
	}

	// The broker comes back; its new leader re-admits it through AlterPartition, and the
	// periodic rebalance hands leadership back to it as the preferred replica.
	q.heartbeat(victim, epochs[victim])
	q.waitImage(act.NodeID(), "victim unfenced", func(img *Image) bool { return !img.Brokers[victim].Fenced })
	np, err := act.AlterPartition(AlterPartitionRequest{Topic: "t", Partition: 0, BrokerID: p0.Leader, BrokerEpoch: epochs[p0.Leader],
		LeaderEpoch: p0.LeaderEpoch, PartitionEpoch: act.Image().Partition("t", 0).PartitionEpoch, NewISR: append(slices.Clone(p0.ISR), victim)})
	if err != nil {
		t.Fatal(err)
	}
	if np.LeaderEpoch != p0.LeaderEpoch || !np.InISR(victim) {
		t.Fatalf("AlterPartition returned %+v", np)
	}
	img = q.waitImage(act.NodeID(), "preferred leader back", func(img *Image) bool { return img.Partition("t", 0).Leader == victim })
	if p := img.Partition("t", 0); p.LeaderEpoch != 2 {
		t.Fatalf("preferred leader election: %+v; want leader epoch 2", p)
	}
	s := act.Stats()
	if s.LeaderElections < 2 || s.ISRShrinks < 3 || s.ISRExpands < 1 || s.UncleanLeaderElections != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFencingContinuesAfterControllerFailover(t *testing.T) {
	q := newQuorum(t, 3, 0, func(c *Config) { c.BrokerSessionTimeout = time.Second })
	act := q.waitActive()
	for id := int32(1); id <= 3; id++ {
		q.register(id)
	}
	q.waitImage(act.NodeID(), "3 live brokers", func(img *Image) bool { return len(img.LiveBrokers()) == 3 })
	if _, err := act.CreateTopic("t", 3, 3, nil, false); err != nil {
		t.Fatal(err)
	}
	// The active controller's node dies: its broker stops heartbeating too.
	dead := act.NodeID()
	q.silence(dead)
	q.stop(dead)
	act = q.waitActive()
	img := q.waitImage(act.NodeID(), "dead broker fenced, no partition led by it", func(img *Image) bool {
		if !img.Brokers[dead].Fenced {
			return false
		}
		for i := range 3 {
			if p := img.Partition("t", int32(i)); p.Leader == dead || p.Leader == NoLeader {
				return false
			}
		}
		return true
	})
	// And a second broker death is still handled by the new controller.
	var second int32
	for _, id := range img.LiveBrokers() {
		if id != act.NodeID() {
			second = id
		}
	}
	q.silence(second)
	img = q.waitImage(act.NodeID(), "second broker fenced", func(img *Image) bool {
		if !img.Brokers[second].Fenced {
			return false
		}
		for i := range 3 {
			if p := img.Partition("t", int32(i)); p.Leader != act.NodeID() || !slices.Equal(p.ISR, []int32{act.NodeID()}) {
				return false
			}
		}
		return true
	})
	if img.OfflinePartitions() != 0 || img.UnderReplicatedPartitions() != 3 {
		t.Fatalf("offline %d under-replicated %d; want 0 and 3", img.OfflinePartitions(), img.UnderReplicatedPartitions())
	}
}

// metricValue gathers reg and returns the value of the single-series metric name.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestMetricsAcrossQuorum(t *testing.T) {
	q := newQuorum(t, 3, 0, func(c *Config) { c.BrokerSessionTimeout = 500 * time.Millisecond })
	act := q.waitActive()
	for id := int32(1); id <= 2; id++ {
		q.register(id)
	}
	q.waitImage(act.NodeID(), "2 live brokers", func(img *Image) bool { return len(img.LiveBrokers()) == 2 })
	if _, err := act.CreateTopic("t", 2, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	q.silence(1)
	q.waitImage(act.NodeID(), "broker 1 fenced", func(img *Image) bool { return img.Brokers[1].Fenced })
	regs := map[int32]*prometheus.Registry{}
	for _, c := range q.running() {
		regs[c.NodeID()] = prometheus.NewRegistry()
		if err := c.RegisterMetrics(regs[c.NodeID()]); err != nil {
			t.Fatal(err)
		}
	}
	activeSum := 0.0
	for id, reg := range regs {
		activeSum += metricValue(t, reg, "kafka_controller_kafkacontroller_activecontrollercount")
		q.waitImage(id, "broker 1 fenced", func(img *Image) bool { return img.Brokers[1].Fenced })
		if got := metricValue(t, reg, "kchaos_controller_isrshrinks_total"); got != float64(act.Stats().ISRShrinks) {
			t.Fatalf("node %d isr shrinks %v, active controller's image %d", id, got, act.Stats().ISRShrinks)
		}
	}
	if activeSum != 1 {
		t.Fatalf("ActiveControllerCount summed over the quorum is %v, want 1", activeSum)
	}
	reg := regs[act.NodeID()]
	// RF=1: the partition broker 1 led has no other replica and goes offline.
	if off := metricValue(t, reg, "kafka_controller_kafkacontroller_offlinepartitionscount"); off != 1 {
		t.Fatalf("offline partitions %v, want 1", off)
	}
	if f := metricValue(t, reg, "kafka_controller_kafkacontroller_fencedbrokercount"); f != 1 {
		t.Fatalf("fenced brokers %v, want 1", f)
	}
}

// TestSingleNodeAdmin runs a one-node quorum (no Voters given: the node is a voter alone)
// through the admin and broker-lifecycle API, errors included.
func TestSingleNodeAdmin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logs := &testLog{t: t}
	cfg := Config{NodeID: 1, RaftListener: ln, DataDir: dir, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	fastRaft(&cfg)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown(); logs.stop() })
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !c.ActiveController() {
			return fmt.Errorf("not active")
		}
		return nil
	})
	if c.LeaderID() != 1 {
		t.Fatalf("LeaderID %d, want 1", c.LeaderID())
	}

	if _, err := c.RegisterBroker(Registration{ID: 1, Host: "", Port: 9092}); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("registration without host: %v", err)
	}
	epoch, err := c.RegisterBroker(Registration{ID: 1, Host: "127.0.0.1", Port: 9092})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Image().Brokers[1].Fenced {
		t.Fatal("a new registration is not fenced")
	}
	if _, err := c.CreateTopic("t", 1, 1, nil, false); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("create with only a fenced broker: %v", err)
	}
	if _, err := c.Heartbeat(1, epoch-1); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("stale heartbeat: %v", err)
	}
	if _, err := c.Heartbeat(7, epoch); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatalf("unknown broker heartbeat: %v", err)
	}
	if fenced, err := c.Heartbeat(1, epoch); err != nil || fenced {
		t.Fatalf("first heartbeat: fenced %v err %v; want unfenced", fenced, err)
	}

	top, err := c.CreateTopic("t", -1, -1, nil, true)
	if err != nil || len(top.Partitions) != 1 || c.Image().Topics["t"] != nil {
		t.Fatalf("validateOnly create: %+v %v (topic in image: %v)", top, err, c.Image().Topics["t"] != nil)
	}
	if _, err := c.CreateTopic("t", 2, 1, map[string]string{"retention.ms": "5"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic("t", 2, 1, nil, false); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	if top, err := c.CreatePartitions("t", 4, true); err != nil || len(top.Partitions) != 4 || len(c.Image().Topics["t"].Partitions) != 2 {
		t.Fatalf("validateOnly create partitions: %v", err)
	}
	if top, err := c.CreatePartitions("t", 4, false); err != nil || len(top.Partitions) != 4 {
		t.Fatalf("create partitions: %v", err)
	}
	if top, err := c.AlterConfigs("t", map[string]string{"cleanup.policy": "compact"}, []string{"retention.ms"}, false); err != nil || len(top.Configs) != 1 {
		t.Fatalf("alter configs: %+v %v", top, err)
	}
	p := c.Image().Partition("t", 0)
	if _, err := c.AlterPartition(AlterPartitionRequest{Topic: "t", Partition: 0, BrokerID: 1, BrokerEpoch: epoch, LeaderEpoch: p.LeaderEpoch + 1, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{1}}); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("alter partition with a future leader epoch: %v", err)
	}
	if err := c.FenceBroker(1); err != nil {
		t.Fatal(err)
	}
	if img := c.Image(); img.OfflinePartitions() != 4 {
		t.Fatalf("after fencing the only broker: %d offline partitions, want 4", img.OfflinePartitions())
	}
	if fenced, err := c.Heartbeat(1, epoch); err != nil || fenced || c.Image().OfflinePartitions() != 0 {
		t.Fatalf("heartbeat after fencing: fenced %v err %v offline %d", fenced, err, c.Image().OfflinePartitions())
	}
	if err := c.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic("t"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v", err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic("late", 1, 1, nil, false); !errors.Is(err, ErrNotController) {
		t.Fatalf("create after shutdown: %v", err)
	}
}
