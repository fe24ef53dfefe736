package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/history"
)

// replCluster is a replicated 3-broker local cluster with a chaos.Net proxy on every directed
// link (client, broker→broker Kafka and Raft), wired the way `kchaos run` wires it: a Local
// driver, a KafkaResolver and an Observe loop writing to a history.
type replCluster struct {
	t        *testing.T
	seed     int64
	rng      *rand.Rand
	c        *local.Cluster
	net      *Net
	drv      *Local
	driver   Driver // faults go through it when set (the netns tests), else through drv
	resolver *KafkaResolver
	cl       *kgo.Client // admin and raw requests; its Produce requests go with acks=all
	cl1      *kgo.Client // raw Produce requests with acks=1 (kgo sets Acks from its config)
	runDirs  []string    // run directories of the runners started, for the journal check
	runners  []*Runner

	histMu sync.Mutex // guards hist
	hist   bytes.Buffer
	hw     *history.Writer
}

// lockedBuffer lets the history writer and the test read the same buffer.
type lockedBuffer struct{ c *replCluster }

func (b lockedBuffer) Write(p []byte) (int, error) {
	b.c.histMu.Lock()
	defer b.c.histMu.Unlock()
	return b.c.hist.Write(p)
}

// startReplCluster starts the cluster with props added to the launcher's defaults, and logs
// the seed. Cleanup heals every runner, checks nothing is left (no stopped process, no
// impaired link, nothing pending in the journals) and stops everything.
func startReplCluster(t *testing.T, props map[string]string, topics ...string) *replCluster {
	t.Helper()
	seed := time.Now().UnixNano()
	t.Logf("seed: %d", seed)
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	rc := &replCluster{t: t, seed: seed, rng: rand.New(rand.NewPCG(uint64(seed), 6)), net: NewNet(seed)}
	rc.hw = history.NewWriter(lockedBuffer{rc})
	cfg := local.Config{Brokers: 3, Dir: t.TempDir(), Binary: bin, StopTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Props:  map[string]string{"group.initial.rebalance.delay.ms": "0"}}
	maps.Copy(cfg.Props, props)
	var routeErr error
	cfg.Route = func(from, to int32, raft bool, addr string) string {
		id := LinkID{From: from, To: to, Plane: PlaneKafka}
		switch {
		case from == local.ClientLinks:
			id = LinkID{From: Clients, To: to, Plane: PlaneClient}
		case raft:
			id.Plane = PlaneRaft
		}
		p, err := rc.net.Add(id, addr)
		if err != nil {
			routeErr = errors.Join(routeErr, err)
			return addr
		}
		return p.Addr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	c, err := local.Start(ctx, cfg)
	if err != nil {
		rc.net.Close()
		t.Fatal(err)
	}
	rc.c = c
	octx, stopObserver := context.WithCancel(context.Background())
	observed := make(chan struct{})
	t.Cleanup(func() {
		stopObserver()
		<-observed
		rc.cleanup()
	})
	if routeErr != nil {
		t.Fatal(routeErr)
	}
	if n := len(rc.net.Peers(1, PlaneRaft)) + len(rc.net.Peers(1, PlaneKafka)); n != 4 {
		t.Fatalf("broker 1 has %d proxied peer links, want 4 (Kafka and Raft to 2 peers)", n)
	}
	t.Logf("cluster of 3 up in %s", time.Since(start).Round(time.Millisecond))
	rc.drv = &Local{Nodes: map[int32]Process{}, Net: rc.net}
	for _, n := range c.Nodes {
		rc.drv.Nodes[n.ID] = n
	}
	if rc.resolver, err = NewKafkaResolver(c.Bootstrap()); err != nil {
		t.Fatal(err)
	}
	if rc.cl, err = kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RequestRetries(3)); err != nil {
		t.Fatal(err)
	}
	if rc.cl1, err = kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RequestRetries(3),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.cl1.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(observed)
		Observe(octx, rc.resolver, rc.hw, topics, 2, 500*time.Millisecond)
	}()
	for _, tp := range topics {
		rc.createTopic(tp, 3)
	}
	return rc
}

// cleanup heals, checks that nothing of a fault is left, and stops the cluster.
func (rc *replCluster) cleanup() {
	t := rc.t
	for _, r := range rc.runners {
		if err := r.Heal(); err != nil {
			t.Errorf("heal: %v", err)
		}
		if p := r.Pending(); len(p) > 0 {
			t.Errorf("pending changes after heal: %+v", p)
		}
	}
	for _, dir := range rc.runDirs {
		if p, err := ReadJournal(dir); err != nil || len(p) > 0 {
			t.Errorf("journal %s pending after heal: %+v %v", dir, p, err)
		}
	}
	if l := rc.net.Impaired(); len(l) > 0 {
		t.Errorf("impaired links after heal: %v", l)
	}
	for _, n := range rc.c.Nodes {
		if !n.Running() {
			t.Errorf("broker %d not running after heal", n.ID)
		} else if st := processState(t, n.Pid()); st == 'T' {
			t.Errorf("broker %d (pid %d) still stopped after heal", n.ID, n.Pid())
		}
	}
	if rc.cl != nil {
		rc.cl.Close()
	}
	if rc.cl1 != nil {
		rc.cl1.Close()
	}
	if rc.resolver != nil {
		rc.resolver.Close()
	}
	if t.Failed() {
		for _, n := range rc.c.Nodes {
			t.Logf("broker %d log tail:\n%s", n.ID, tail(n.Log(), 80))
		}
	}
	rc.c.Stop()
	rc.net.Close()
	for _, n := range rc.c.Nodes {
		if n.Running() {
			t.Errorf("broker %d still running after Stop", n.ID)
		}
		// The log file spans every process of the broker, restarts included.
		if b, err := os.ReadFile(n.LogPath); err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Errorf("broker %d reported a data race:\n%s", n.ID, b[bytes.Index(b, []byte("WARNING: DATA RACE")):])
		}
	}
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

func (rc *replCluster) createTopic(name string, partitions int32) {
	rc.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 3
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, rc.cl)
	if err != nil {
		rc.t.Fatalf("create topic %s: %v", name, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		rc.t.Fatalf("create topic %s: %v", name, err)
	}
	until(rc.t, "topic "+name+" fully replicated", 20*time.Second, func() bool {
		for p := range partitions {
			pv, ok := rc.partition(0, name, p)
			if !ok || pv.Leader < 0 || len(pv.ISR) != 3 {
				return false
			}
		}
		return true
	})
}

// mustPartition returns topic-p as broker via (0: any) sees it, retrying for up to 10s.
func (rc *replCluster) mustPartition(via int32, topic string, p int32) PartitionView {
	rc.t.Helper()
	var pv PartitionView
	until(rc.t, fmt.Sprintf("metadata of %s-%d", topic, p), 10*time.Second, func() bool {
		var ok bool
		pv, ok = rc.partition(via, topic, p)
		return ok && pv.Leader >= 0
	})
	return pv
}

// mustView returns the cluster as some broker sees it once that broker knows every partition
// of topic with a leader, retrying for up to 10s.
func (rc *replCluster) mustView(topic string) ClusterView {
	rc.t.Helper()
	var v ClusterView
	until(rc.t, "metadata of "+topic, 10*time.Second, func() bool {
		var err error
		v, err = rc.view(0)
		if err != nil || len(v.Topics[topic]) == 0 || v.Controller < 0 {
			return false
		}
		for _, p := range v.Topics[topic] {
			if p.Leader < 0 || len(p.Replicas) == 0 {
				return false
			}
		}
		return true
	})
	return v
}

// view asks broker via (0: any) for Metadata of every topic.
func (rc *replCluster) view(via int32) (ClusterView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	var resp kmsg.Response
	var err error
	if via == 0 {
		resp, err = rc.cl.Request(ctx, req)
	} else {
		resp, err = rc.cl.Broker(int(via)).Request(ctx, req)
	}
	if err != nil {
		return ClusterView{}, err
	}
	return viewFromMetadata(resp.(*kmsg.MetadataResponse)), nil
}

// partition returns topic-p as broker via (0: any) sees it.
func (rc *replCluster) partition(via int32, topic string, p int32) (PartitionView, bool) {
	v, err := rc.view(via)
	if err != nil || int(p) >= len(v.Topics[topic]) {
		return PartitionView{}, false
	}
	return v.Topics[topic][p], true
}

// fault starts fault f at once (For: far past the test) through a Runner, as `kchaos run`
// does, and returns when it is applied.
func (rc *replCluster) fault(f Fault) *Runner {
	rc.t.Helper()
	f.For = Duration(10 * time.Minute)
	dir := rc.t.TempDir()
	var drv Driver = rc.drv
	if rc.driver != nil {
		drv = rc.driver
	}
	before := rc.starts()
	r, err := Start(context.Background(), []Fault{f}, Env{Seed: rc.seed, Duration: 11 * time.Minute, Driver: drv,
		Resolver: rc.resolver, History: rc.hw, RunDir: dir, HealTimeout: 30 * time.Second})
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.runners = append(rc.runners, r)
	rc.runDirs = append(rc.runDirs, dir)
	// The runner writes the start event once Apply returned: the fault is fully in place.
	until(rc.t, string(f.Kind)+" applied", 10*time.Second, func() bool { return rc.starts() > before || len(r.Failures()) > 0 })
	if fs := r.Failures(); len(fs) > 0 {
		rc.t.Fatalf("%s not applied: %v", f.Kind, fs)
	}
	return r
}

// starts counts the fault start events in the history.
func (rc *replCluster) starts() int {
	rc.histMu.Lock()
	defer rc.histMu.Unlock()
	return bytes.Count(rc.hist.Bytes(), []byte(`"phase":"start"`))
}

// heal heals r and returns how long healing took.
func (rc *replCluster) heal(r *Runner) time.Duration {
	rc.t.Helper()
	start := time.Now()
	if err := r.Heal(); err != nil {
		rc.t.Fatalf("heal: %v", err)
	}
	return time.Since(start)
}

// produceRaw sends values to topic-p on broker `to` in one Produce request with acks (1 or
// -1) and returns the partition's error (nil: acknowledged).
func (rc *replCluster) produceRaw(to int32, topic string, p int32, acks int16, values []string) error {
	cl := rc.cl
	if acks == 1 {
		cl = rc.cl1
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = p
	rp.Records = recordBatch(values)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	resp, err := cl.Broker(int(to)).Request(ctx, req)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode)
}

// readPartition reads topic-p from its current leader with a consumer until it has seen the
// value last, and returns every value read.
func (rc *replCluster) readPartition(topic string, p int32, last string) []string {
	rc.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(rc.c.Bootstrap()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		rc.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []string
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, r := range fs.Records() {
			out = append(out, string(r.Value))
			if string(r.Value) == last {
				return out
			}
		}
	}
	rc.t.Fatalf("read %s-%d: %q not seen within 15s; read %d records", topic, p, last, len(out))
	return nil
}

// followerNotController picks, with the test's rng, a replica of pv that is neither its
// leader nor the active controller.
func (rc *replCluster) followerNotController(pv PartitionView, controller int32) int32 {
	var cands []int32
	for _, r := range pv.Replicas {
		if r != pv.Leader && r != controller {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		rc.t.Fatalf("no follower of %v (leader %d) that is not the controller %d", pv.Replicas, pv.Leader, controller)
	}
	slices.Sort(cands)
	return cands[rc.rng.IntN(len(cands))]
}

// observed returns the observer's ISR events for topic-p.
func (rc *replCluster) observed(topic string, p int32) []history.PartitionState {
	rc.histMu.Lock()
	data := slices.Clone(rc.hist.Bytes())
	rc.histMu.Unlock()
	rd := history.NewReader(bytes.NewReader(data), "history")
	var out []history.PartitionState
	for {
		var e history.Event
		if err := rd.Next(&e); err != nil {
			return out
		}
		if e.F == history.FMeta && e.Topic == topic && e.Partition == p && e.ISR != nil {
			out = append(out, *e.ISR)
		}
	}
}

// TestClusterIsolatedFollowerLeavesAndRejoinsISR cuts one follower off from its peers (Kafka
// and Raft links, so also from the controller) with replica.lag.time.max.ms=2000: it leaves the
// ISR within about that time (the controller fences it after broker.session.timeout.ms, 1s in
// the launcher's defaults, which comes first), and it is back in the ISR after heal.
func TestClusterIsolatedFollowerLeavesAndRejoinsISR(t *testing.T) {
	rc := startReplCluster(t, map[string]string{"replica.lag.time.max.ms": "2000"}, "a")
	v := rc.mustView("a")
	pv := v.Topics["a"][0]
	f := rc.followerNotController(pv, v.Controller)
	t.Logf("a-0 leader %d replicas %v, controller %d; isolating follower %d from peers", pv.Leader, pv.Replicas, v.Controller, f)
	fault := Fault{Kind: Isolate, Target: Target{Sel: SelBroker, Broker: f}, Params: map[string]string{"from": "peers"}}
	effect := rc.followerLeavesAndRejoinsISR("a", pv, f, fault, 8)
	if effect > 2*time.Second+2*time.Second {
		t.Errorf("the isolated follower left the ISR %s after the fault began; want within about replica.lag.time.max.ms (2s)", effect)
	}
}

// TestClusterFollowerCutFromLeaderLagsOutOfISR cuts only the links between a follower and its
// partition's leader, while both still reach the controller: the follower stays registered,
// so it is the leader's replica.lag.time.max.ms (2s) that takes it out of the ISR, not sooner.
func TestClusterFollowerCutFromLeaderLagsOutOfISR(t *testing.T) {
	const lag = 2 * time.Second
	rc := startReplCluster(t, map[string]string{"replica.lag.time.max.ms": "2000"}, "l")
	v := rc.mustView("l")
	var cands []PartitionView
	for _, p := range v.Topics["l"] {
		if p.Leader != v.Controller {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		t.Fatalf("every partition of l is led by the controller %d: %+v", v.Controller, v.Topics["l"])
	}
	pv := cands[rc.rng.IntN(len(cands))]
	f := rc.followerNotController(pv, v.Controller)
	t.Logf("l-%d leader %d replicas %v, controller %d; cutting follower %d from the leader", pv.Partition, pv.Leader, pv.Replicas, v.Controller, f)
	fault := Fault{Kind: Partition, Target: Target{Sel: SelBroker, Broker: f},
		Params: map[string]string{"from": fmt.Sprintf("broker(%d)", pv.Leader)}}
	effect := rc.followerLeavesAndRejoinsISR("l", pv, f, fault, 4)
	if effect < lag-500*time.Millisecond {
		t.Errorf("the follower left the ISR %s after it was cut from the leader; want no sooner than replica.lag.time.max.ms (%s)", effect, lag)
	}
	if effect > 2*lag+2*time.Second {
		t.Errorf("the follower left the ISR %s after it was cut from the leader; want about replica.lag.time.max.ms (%s)", effect, lag)
	}
}

// followerLeavesAndRejoinsISR applies fault (which must impair wantLinks links), writes to
// topic-pv.Partition meanwhile so the leader's log moves, waits until the leader's Metadata
// drops follower f from the ISR, heals and waits until f is back. It logs and returns the time
// from fault start to the shrink.
func (rc *replCluster) followerLeavesAndRejoinsISR(topic string, pv PartitionView, f int32, fault Fault, wantLinks int) time.Duration {
	t := rc.t
	t.Helper()
	part := pv.Partition
	until(t, "writes before the fault", 10*time.Second, func() bool {
		return rc.produceRaw(pv.Leader, topic, part, -1, []string{"pre"}) == nil
	})
	start := time.Now()
	r := rc.fault(fault)
	applied := time.Since(start)
	if got := rc.net.Impaired(); len(got) != wantLinks {
		t.Errorf("%s impaired %d links %v, want %d", fault.Kind, len(got), got, wantLinks)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // keep the leader's log moving, so the cut follower falls behind
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			rc.produceRaw(pv.Leader, topic, part, 1, []string{fmt.Sprintf("during%d", i)})
		}
	}()
	inISR := func() bool {
		p, ok := rc.partition(pv.Leader, topic, part)
		return !ok || slices.Contains(p.ISR, f)
	}
	effect := until(t, "cut follower leaves the ISR", 15*time.Second, func() bool { return !inISR() }) + applied
	close(stop)
	wg.Wait()
	if p, _ := rc.partition(pv.Leader, topic, part); p.Leader != pv.Leader || len(p.ISR) != 2 {
		t.Errorf("after the shrink %s-%d has leader %d ISR %v; want leader %d and 2 in the ISR", topic, part, p.Leader, p.ISR, pv.Leader)
	}
	for _, via := range pv.Replicas {
		if p, ok := rc.partition(via, topic, part); ok {
			t.Logf("%s-%d ISR as broker %d's Metadata shows it after the shrink: %v", topic, part, via, p.ISR)
		}
	}
	healStart := time.Now()
	undo := rc.heal(r)
	if l := rc.net.Impaired(); len(l) > 0 {
		t.Fatalf("links impaired after heal: %v", l)
	}
	back := until(t, "follower back in the ISR", 30*time.Second, inISR)
	healed := time.Since(healStart)
	t.Logf("%s: takes effect (fault start -> ISR shrink seen) %s [replica.lag.time.max.ms 2s]; heal (heal -> ISR back) %s (undo %s, catch up %s)",
		fault.Kind, effect.Round(time.Millisecond), healed.Round(time.Millisecond), undo.Round(time.Microsecond), back.Round(time.Millisecond))
	return effect
}

// ackLog records when a producer's records were acknowledged.
type ackLog struct {
	mu     sync.Mutex
	acks   []time.Time
	failed int
	last   error
}

func (a *ackLog) done(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.failed++
		a.last = err
		return
	}
	a.acks = append(a.acks, time.Now())
}

// longestGap returns the longest time between consecutive acknowledgements and when it
// began, counting acks from after.
func (a *ackLog) longestGap(after time.Time) (time.Duration, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	acks := slices.Clone(a.acks)
	slices.SortFunc(acks, func(x, y time.Time) int { return x.Compare(y) })
	var gap time.Duration
	var at time.Time
	for i := 1; i < len(acks); i++ {
		if acks[i].Before(after) {
			continue
		}
		if d := acks[i].Sub(acks[i-1]); d > gap {
			gap, at = d, acks[i-1]
		}
	}
	return gap, at
}

func (a *ackLog) count(after time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.acks {
		if t.After(after) {
			n++
		}
	}
	return n
}

// TestClusterKillLeaderElectsNewLeader kills the leader of b-0 under a continuous acks=all
// producer: another replica becomes leader, and the producer's longest gap between
// acknowledgements is the failover unavailability it sees.
func TestClusterKillLeaderElectsNewLeader(t *testing.T) {
	rc := startReplCluster(t, nil, "b")
	rc.killLeaderElectsNewLeader()
}

// killLeaderElectsNewLeader is TestClusterKillLeaderElectsNewLeader on rc, whose topic b
// exists.
func (rc *replCluster) killLeaderElectsNewLeader() {
	t := rc.t
	t.Helper()
	old := rc.mustPartition(0, "b", 0)
	prod, err := kgo.NewClient(kgo.SeedBrokers(rc.c.Bootstrap()...), kgo.DefaultProduceTopic("b"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.MetadataMinAge(50*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.RecordDeliveryTimeout(30*time.Second), kgo.MaxBufferedRecords(1000))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var log ackLog
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			prod.Produce(context.Background(), &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "r%d", i)}, func(_ *kgo.Record, err error) { log.done(err) })
		}
	}()
	until(t, "producer acknowledged", 10*time.Second, func() bool { return log.count(time.Time{}) >= 50 })
	time.Sleep(500 * time.Millisecond)
	killAt := time.Now()
	r := rc.fault(Fault{Kind: Kill, Target: Target{Sel: SelLeader, Topic: "b", Partition: 0}})
	if rc.c.Node(old.Leader).Running() {
		t.Fatalf("leader %d of b-0 still running after kill", old.Leader)
	}
	var newLeader int32
	elected := until(t, "new leader elected", 20*time.Second, func() bool {
		for _, via := range old.Replicas {
			if via == old.Leader {
				continue
			}
			if p, ok := rc.partition(via, "b", 0); ok && p.Leader >= 0 && p.Leader != old.Leader {
				newLeader = p.Leader
				return true
			}
		}
		return false
	})
	resumed := until(t, "producer acknowledged again after the kill", 20*time.Second, func() bool { return log.count(killAt) >= 50 })
	time.Sleep(time.Second)
	healStart := time.Now()
	rc.heal(r)
	until(t, "restarted broker back in the ISR", 30*time.Second, func() bool {
		p, ok := rc.partition(newLeader, "b", 0)
		return ok && slices.Contains(p.ISR, old.Leader)
	})
	healed := time.Since(healStart)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := prod.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	gap, gapAt := log.longestGap(killAt.Add(-time.Second))
	log.mu.Lock()
	acked, failed, lastErr := len(log.acks), log.failed, log.last
	log.mu.Unlock()
	if failed > 0 {
		t.Errorf("%d records failed (last: %v); the producer retries through a failover", failed, lastErr)
	}
	if gap > 10*time.Second {
		t.Errorf("producer saw no ack for %s after the leader kill", gap)
	}
	if gapAt.Before(killAt.Add(-100 * time.Millisecond)) {
		t.Errorf("longest gap began %s before the kill, not at it", killAt.Sub(gapAt))
	}
	epochs := map[int32]bool{}
	for _, s := range rc.observed("b", 0) {
		epochs[s.LeaderEpoch] = true
	}
	if len(epochs) < 2 {
		t.Errorf("observer saw leader epochs %v of b-0; want the failover's new epoch too", slices.Collect(maps.Keys(epochs)))
	}
	t.Logf("kill leader %d of b-0: new leader %d elected %s after the kill; producer (acks=all) unavailability (longest gap between acks) %s, first acks again within %s; %d acked, %d failed; heal: restarted broker back in the ISR %s after heal",
		old.Leader, newLeader, elected.Round(time.Millisecond), gap.Round(time.Millisecond), resumed.Round(time.Millisecond), acked, failed, healed.Round(time.Millisecond))
}

// TestClusterLeaderIsolatedAcks1Lost cuts the leader of a partition off from its followers
// (not from clients), writes acks=1 records to it, kills it and heals: a follower took over,
// and every record acknowledged during the isolation is gone, while acks=all records written
// before it survive.
func TestClusterLeaderIsolatedAcks1Lost(t *testing.T) {
	rc := startReplCluster(t, nil, "c")
	rc.leaderIsolatedAcks1Lost()
}

// leaderIsolatedAcks1Lost is TestClusterLeaderIsolatedAcks1Lost on rc, whose topic c exists.
func (rc *replCluster) leaderIsolatedAcks1Lost() {
	t := rc.t
	t.Helper()
	v := rc.mustView("c")
	var cands []int32
	for _, p := range v.Topics["c"] {
		if p.Leader != v.Controller {
			cands = append(cands, p.Partition)
		}
	}
	if len(cands) == 0 {
		t.Fatalf("every partition of c is led by the controller %d: %+v", v.Controller, v.Topics["c"])
	}
	part := cands[rc.rng.IntN(len(cands))]
	old := v.Topics["c"][part]
	t.Logf("c-%d leader %d replicas %v, controller %d", part, old.Leader, old.Replicas, v.Controller)
	var pre []string
	for i := range 10 {
		pre = append(pre, fmt.Sprintf("pre%d", i))
	}
	var preErr error
	until(t, "acks=all before the fault", 10*time.Second, func() bool {
		preErr = rc.produceRaw(old.Leader, "c", part, -1, pre)
		return preErr == nil
	})
	start := time.Now()
	iso := rc.fault(Fault{Kind: LeaderIsolateFromFollowers, Target: Target{Sel: SelLeader, Topic: "c", Partition: part}})
	applied := time.Since(start)
	var acked []string
	var lastErr error
	var newLeader int32 = -1
	deadline := time.Now().Add(15 * time.Second)
	var took time.Duration
	for i := 0; time.Now().Before(deadline); i++ {
		val := fmt.Sprintf("iso%d", i)
		began := time.Now()
		if err := rc.produceRaw(old.Leader, "c", part, 1, []string{val}); err == nil {
			acked = append(acked, val)
		} else {
			lastErr = fmt.Errorf("%s after %s", err, time.Since(began).Round(time.Millisecond))
		}
		if newLeader < 0 {
			for _, via := range old.Replicas {
				if via == old.Leader {
					continue
				}
				if p, ok := rc.partition(via, "c", part); ok && p.Leader >= 0 && p.Leader != old.Leader {
					newLeader, took = p.Leader, time.Since(start)
				}
			}
		}
		if newLeader >= 0 && len(acked) >= 5 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if newLeader < 0 {
		t.Fatalf("no follower took over c-%d within 15s of isolating its leader", part)
	}
	if len(acked) == 0 {
		t.Fatalf("the isolated leader acknowledged no acks=1 record; nothing to lose (last error: %v)", lastErr)
	}
	// The healed links deliver the bytes they held, as TCP does after a partition: a fetch
	// response of the old leader reaching a follower that has not yet applied its own
	// election would be appended, and that record would survive (legitimately). Heal only
	// once the new leader's own metadata says it leads.
	until(t, "the new leader's own view", 10*time.Second, func() bool {
		p, ok := rc.partition(newLeader, "c", part)
		return ok && p.Leader == newLeader
	})
	kill := rc.fault(Fault{Kind: Kill, Target: Target{Sel: SelBroker, Broker: old.Leader}})
	healStart := time.Now()
	rc.heal(kill)
	rc.heal(iso)
	until(t, "old leader back in the ISR", 30*time.Second, func() bool {
		p, ok := rc.partition(newLeader, "c", part)
		return ok && p.Leader == newLeader && len(p.ISR) == 3
	})
	healed := time.Since(healStart)
	if err := rc.produceRaw(newLeader, "c", part, -1, []string{"end"}); err != nil {
		t.Fatalf("acks=all after heal: %v", err)
	}
	got := rc.readPartition("c", part, "end")
	for _, v := range pre {
		if !slices.Contains(got, v) {
			t.Errorf("acks=all record %s written before the fault is lost", v)
		}
	}
	var lost []string
	for _, v := range acked {
		if !slices.Contains(got, v) {
			lost = append(lost, v)
		}
	}
	if len(lost) != len(acked) {
		t.Errorf("%d of %d acks=1 records acknowledged by the isolated leader are lost; want all (log %v)", len(lost), len(acked), got)
	}
	t.Logf("leader-isolate-from-followers on c-%d: applied %s, follower %d took over %s after fault start; %d acks=1 records acknowledged by the isolated leader %d, %d lost after kill+heal; heal: back in the ISR %s after heal",
		part, applied.Round(time.Millisecond), newLeader, took.Round(time.Millisecond), len(acked), old.Leader, len(lost), healed.Round(time.Millisecond))
}
