// Package e2e is the fixture of kchaos's end-to-end tests. It starts clusters of real
// `kchaos broker` processes the way `kchaos run` does — through target.Embedded (every link
// behind a chaos proxy) or target.Netns (every broker in a network namespace) — or standalone
// brokers behind client proxies, and offers the steps scenarios are written in, so a test
// reads like its scenario:
//
//	c := e2e.StartCluster(t, 3, e2e.Set("replica.lag.time.max.ms", "2000"))
//	c.Observe([]string{"a"}, 2)
//	c.CreateTopic("a", 3, 3)
//	leader := c.WaitOnLeader("a", 0)
//	r := c.Fault(chaos.Fault{Kind: chaos.Kill, Target: chaos.Target{Sel: chaos.SelBroker, Broker: leader}})
//	e2e.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { ... })
//	c.Heal(r)
//
// Workloads run through the run package with RunWorkload. Everything stops when the test
// ends, after checking that nothing of a fault is left (no stopped broker, no impaired link,
// nothing pending in a journal) and that no broker reported a data race. Every cluster has a
// seed (testkit.Seed: printed, KCHAOS_SEED replays it).
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/internal/testkit"
	"github.com/kchaos/kchaos/target"
)

// CheckFor polls f every step until it returns nil, failing the test with f's last error
// after total; it returns how long the condition took (testkit.CheckFor).
func CheckFor(t testing.TB, total, step time.Duration, f func() error) time.Duration {
	t.Helper()
	return testkit.CheckFor(t, total, step, f)
}

// Option configures StartCluster.
type Option func(*options)

type options struct {
	props     map[string]string
	netns     bool
	netnsDisk int64
}

// Set passes a broker setting (server.properties name) to every broker.
func Set(key, value string) Option {
	return func(o *options) { o.props[key] = value }
}

// Props passes broker settings to every broker.
func Props(props map[string]string) Option {
	return func(o *options) { maps.Copy(o.props, props) }
}

// Netns runs every broker in a network namespace of its own on a tmpfs data directory of
// diskSize bytes (target.Netns). It needs root, iproute2 and network namespaces: without them
// the test is skipped (or fails where testkit.Need says every test must run).
func Netns(diskSize int64) Option {
	return func(o *options) { o.netns, o.netnsDisk = true, diskSize }
}

// Cluster is a running test cluster.
type Cluster struct {
	t testing.TB
	// Seed is the cluster's seed; Rand is seeded with it.
	Seed uint64
	Rand *rand.Rand

	target   target.Target // nil for standalone brokers
	nodes    []*local.Node
	net      *chaos.Net // nil in network namespaces
	driver   chaos.Driver
	resolver chaos.Resolver
	fabric   *chaos.Fabric
	admin    *kgo.Client // admin and raw requests; its Produce requests go with acks=all
	acks1    *kgo.Client // raw Produce requests with acks=1

	histMu sync.Mutex // guards hist
	hist   bytes.Buffer
	hw     *history.Writer

	stopObserver context.CancelFunc
	observed     chan struct{}
	runners      []*chaos.Runner
	runDirs      []string
}

// StartCluster starts brokers broker processes as kchaos run does, with opts, and waits until
// every one is registered with an active controller.
func StartCluster(t testing.TB, brokers int, opts ...Option) *Cluster {
	t.Helper()
	o := options{props: map[string]string{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.netns {
		testkit.Need(t, "root, iproute2 and network namespaces (the netns driver)", chaos.NetnsAvailable())
	}
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	logger := slog.New(slog.DiscardHandler)
	if o.netns {
		ns, err := target.StartNetns(ctx, target.NetnsConfig{Brokers: brokers, Dir: t.TempDir(), Props: o.props, Binary: bin,
			Logger: logger, DiskSize: o.netnsDisk, StopTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("e2e: start %d brokers in namespaces: %v", brokers, err)
		}
		c.target, c.nodes, c.fabric = ns, ns.Cluster().Nodes, ns.Fabric()
	} else {
		emb, err := target.StartEmbedded(ctx, target.EmbeddedConfig{Brokers: brokers, Dir: t.TempDir(), Props: o.props, Binary: bin,
			Logger: logger, Seed: int64(c.Seed), StopTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("e2e: start %d brokers: %v", brokers, err)
		}
		c.target, c.nodes, c.net = emb, emb.Cluster().Nodes, emb.Net()
	}
	t.Cleanup(c.cleanup)
	c.driver, c.resolver = chaos.WithMembership(c.target.Driver(), c.target.Resolver()), c.target.Resolver()
	t.Logf("e2e: cluster of %d up in %s: %v", brokers, time.Since(start).Round(time.Millisecond), c.Bootstrap())
	c.connect(ctx)
	return c
}

// StartStandalone starts n brokers (ids 1..n) that are each a single-node cluster of their
// own, each reached by clients only through its client-link proxy, driven by a Local driver
// and resolved by a fixed view (no one Metadata answer lists them all).
func StartStandalone(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	c.net = chaos.NewNet(int64(c.Seed))
	t.Cleanup(c.cleanup)
	dir := t.TempDir()
	drv := &chaos.Local{Nodes: map[int32]chaos.Process{}, Net: c.net}
	var ids []int32
	for id := int32(1); id <= int32(n); id++ {
		p, err := c.net.Add(chaos.LinkID{From: chaos.Clients, To: id, Plane: chaos.PlaneClient}, "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		nd, err := local.StartNode(ctx, local.NodeConfig{ID: id, DataDir: filepath.Join(dir, fmt.Sprint(id), "data"),
			LogPath: filepath.Join(dir, fmt.Sprint(id), "broker.log"), Binary: bin, Listen: "127.0.0.1:0", Advertise: p.Addr(),
			StopTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
		c.net.SetUpstream(id, chaos.PlaneClient, nd.Addr())
		drv.Nodes[id] = nd
		ids = append(ids, id)
	}
	c.driver = drv
	c.resolver = chaos.ResolverFunc(func(context.Context) (chaos.ClusterView, error) {
		return chaos.ClusterView{Brokers: ids, Controller: ids[0]}, nil
	})
	return c
}

func newCluster(t testing.TB) *Cluster {
	seed := testkit.Seed(t)
	c := &Cluster{t: t, Seed: seed, Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	c.hw = history.NewWriter(lockedWriter{c})
	return c
}

// lockedWriter lets the history writer and the test read the same buffer.
type lockedWriter struct{ c *Cluster }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.histMu.Lock()
	defer w.c.histMu.Unlock()
	return w.c.hist.Write(p)
}

// connect opens the admin clients and waits until a broker answers Metadata.
func (c *Cluster) connect(ctx context.Context) {
	t := c.t
	t.Helper()
	var err error
	if c.admin, err = kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RequestRetries(3)); err != nil {
		t.Fatal(err)
	}
	if c.acks1, err = kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RequestRetries(3),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.acks1.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatalf("e2e: first Metadata: %v", err)
	}
}

// cleanup heals every fault started through the cluster, checks nothing of them is left and
// stops everything.
func (c *Cluster) cleanup() {
	t := c.t
	if c.stopObserver != nil {
		c.stopObserver()
		<-c.observed
	}
	for _, r := range c.runners {
		if err := r.Heal(); err != nil {
			t.Errorf("e2e: heal: %v", err)
		}
		if p := r.Pending(); len(p) > 0 {
			t.Errorf("e2e: pending changes after heal: %+v", p)
		}
	}
	for _, dir := range c.runDirs {
		if p, err := chaos.ReadJournal(dir); err != nil || len(p) > 0 {
			t.Errorf("e2e: journal %s pending after heal: %+v %v", dir, p, err)
		}
	}
	if c.net != nil {
		if l := c.net.Impaired(); len(l) > 0 {
			t.Errorf("e2e: impaired links after heal: %v", l)
		}
	}
	for _, n := range c.nodes {
		if !n.Running() {
			t.Errorf("e2e: broker %d not running after heal", n.ID)
		} else if procState(n.Pid()) == 'T' {
			t.Errorf("e2e: broker %d (pid %d) still stopped after heal", n.ID, n.Pid())
		}
	}
	for _, cl := range []*kgo.Client{c.admin, c.acks1} {
		if cl != nil {
			cl.Close()
		}
	}
	if t.Failed() {
		for _, n := range c.nodes {
			t.Logf("broker %d log tail:\n%s", n.ID, tail(n.Log(), 80))
		}
	}
	if c.target != nil {
		if err := c.target.Close(); err != nil {
			t.Errorf("e2e: close the cluster: %v", err)
		}
	} else {
		for _, n := range c.nodes {
			n.Stop()
		}
		c.net.Close()
	}
	for _, n := range c.nodes {
		if n.Running() {
			t.Errorf("e2e: broker %d still running after stop", n.ID)
		}
		// The log file spans every process of the broker, restarts included.
		if b, err := os.ReadFile(n.LogPath); err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Errorf("e2e: broker %d reported a data race:\n%s", n.ID, b[bytes.Index(b, []byte("WARNING: DATA RACE")):])
		}
	}
}

// procState is the state letter of /proc/PID/stat (R, S, T, ...), 0 when it cannot be read.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if i := bytes.LastIndexByte(b, ')'); err == nil && i >= 0 && i+2 < len(b) {
		return b[i+2]
	}
	return 0
}

// ProcState is the state letter of process pid as /proc shows it ('T': stopped), 0 when it
// cannot be read.
func ProcState(pid int) byte { return procState(pid) }

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// Bootstrap returns the brokers' client addresses.
func (c *Cluster) Bootstrap() []string {
	if c.target != nil {
		return c.target.Bootstrap()
	}
	var out []string
	for _, n := range c.nodes {
		out = append(out, c.net.Addr(chaos.LinkID{From: chaos.Clients, To: n.ID, Plane: chaos.PlaneClient}))
	}
	return out
}

// Node returns broker id's process.
func (c *Cluster) Node(id int32) *local.Node {
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	c.t.Fatalf("e2e: no broker %d", id)
	return nil
}

// Nodes returns the broker processes, by id.
func (c *Cluster) Nodes() []*local.Node { return c.nodes }

// Net returns the link proxies; nil for brokers in network namespaces.
func (c *Cluster) Net() *chaos.Net { return c.net }

// Fabric returns the namespaces the brokers run in; nil unless Netns.
func (c *Cluster) Fabric() *chaos.Fabric { return c.fabric }

// Driver returns the chaos driver kchaos run would use on this cluster.
func (c *Cluster) Driver() chaos.Driver { return c.driver }

// Resolver returns the cluster's resolver.
func (c *Cluster) Resolver() chaos.Resolver { return c.resolver }

// Admin returns a client for admin and raw requests; its Produce requests go with acks=all.
func (c *Cluster) Admin() *kgo.Client { return c.admin }

// LeaderAcks returns a client whose raw Produce requests go with acks=1.
func (c *Cluster) LeaderAcks() *kgo.Client { return c.acks1 }

// Observe records the cluster's view of topics (leaders, ISR against minISR) into the
// cluster's history every 500ms, as kchaos run does, until the test ends.
func (c *Cluster) Observe(topics []string, minISR int) {
	ctx, cancel := context.WithCancel(context.Background())
	c.stopObserver, c.observed = cancel, make(chan struct{})
	go func() {
		defer close(c.observed)
		chaos.Observe(ctx, c.resolver, c.hw, topics, minISR, 500*time.Millisecond)
	}()
}

// History returns the events recorded so far (observer and faults).
func (c *Cluster) History() []history.Event {
	c.histMu.Lock()
	data := slices.Clone(c.hist.Bytes())
	c.histMu.Unlock()
	rd := history.NewReader(bytes.NewReader(data), "history")
	var out []history.Event
	for {
		var e history.Event
		if err := rd.Next(&e); err != nil {
			return out
		}
		out = append(out, e)
	}
}

// Observed returns the observer's ISR events for topic-p.
func (c *Cluster) Observed(topic string, p int32) []history.PartitionState {
	var out []history.PartitionState
	for _, e := range c.History() {
		if e.F == history.FMeta && e.Topic == topic && e.Partition == p && e.ISR != nil {
			out = append(out, *e.ISR)
		}
	}
	return out
}

// CreateTopic creates a topic and waits until every partition has a leader and rf replicas in
// sync.
func (c *Cluster) CreateTopic(name string, partitions int32, rf int16) {
	c.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, c.admin)
	if err != nil {
		c.t.Fatalf("e2e: create topic %s: %v", name, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		c.t.Fatalf("e2e: create topic %s: %v", name, err)
	}
	CheckFor(c.t, 20*time.Second, 10*time.Millisecond, func() error {
		for p := range partitions {
			if l, isr, err := c.leaderAndISR(0, name, p); err != nil || l < 0 || len(isr) != int(rf) {
				return fmt.Errorf("%s-%d: leader %d ISR %v %v", name, p, l, isr, err)
			}
		}
		return nil
	})
}

// Metadata asks broker via (0: any) for Metadata of every topic, within a second.
func (c *Cluster) Metadata(via int32) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	var resp kmsg.Response
	var err error
	if via == 0 {
		resp, err = c.admin.Request(ctx, req)
	} else {
		resp, err = c.admin.Broker(int(via)).Request(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// leaderAndISR returns topic-p's leader and ISR as broker via (0: any) sees it.
func (c *Cluster) leaderAndISR(via int32, topic string, p int32) (int32, []int32, error) {
	m, err := c.Metadata(via)
	if err != nil {
		return -1, nil, err
	}
	for _, t := range m.Topics {
		if t.Topic != nil && *t.Topic == topic {
			for _, mp := range t.Partitions {
				if mp.Partition == p {
					return mp.Leader, mp.ISR, kerr.ErrorForCode(mp.ErrorCode)
				}
			}
		}
	}
	return -1, nil, fmt.Errorf("%s-%d not in metadata", topic, p)
}

// WaitOnLeader waits up to 30s until topic-p has a live leader and returns it.
func (c *Cluster) WaitOnLeader(topic string, p int32) int32 {
	c.t.Helper()
	var leader int32
	CheckFor(c.t, 30*time.Second, 50*time.Millisecond, func() error {
		l, _, err := c.leaderAndISR(0, topic, p)
		if err != nil {
			return err
		}
		if l < 0 || !c.Node(l).Running() {
			return fmt.Errorf("%s-%d: leader %d", topic, p, l)
		}
		leader = l
		return nil
	})
	return leader
}

// Fault starts f at once (For: far past the test) through a chaos.Runner on the cluster's
// driver, as kchaos run does, and returns when it is applied. The fault is healed when the
// test ends unless Heal healed it.
func (c *Cluster) Fault(f chaos.Fault) *chaos.Runner {
	c.t.Helper()
	f.For = chaos.Duration(10 * time.Minute)
	dir := c.t.TempDir()
	before := c.starts()
	r, err := chaos.Start(context.Background(), []chaos.Fault{f}, chaos.Env{Seed: int64(c.Seed), Duration: 11 * time.Minute,
		Driver: c.driver, Resolver: c.resolver, History: c.hw, RunDir: dir, HealTimeout: 30 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	c.runners = append(c.runners, r)
	c.runDirs = append(c.runDirs, dir)
	// The runner writes the start event once Apply returned: the fault is fully in place.
	CheckFor(c.t, 10*time.Second, 10*time.Millisecond, func() error {
		if c.starts() > before || len(r.Failures()) > 0 {
			return nil
		}
		return fmt.Errorf("%s not applied yet", f.Kind)
	})
	if fs := r.Failures(); len(fs) > 0 {
		c.t.Fatalf("e2e: %s not applied: %v", f.Kind, fs)
	}
	return r
}

// starts counts the fault start events in the history.
func (c *Cluster) starts() int {
	c.histMu.Lock()
	defer c.histMu.Unlock()
	return bytes.Count(c.hist.Bytes(), []byte(`"phase":"start"`))
}

// Heal heals r and returns how long healing took.
func (c *Cluster) Heal(r *chaos.Runner) time.Duration {
	c.t.Helper()
	start := time.Now()
	if err := r.Heal(); err != nil {
		c.t.Fatalf("e2e: heal: %v", err)
	}
	return time.Since(start)
}

// Kill sends SIGKILL to broker id and waits for it to exit.
func (c *Cluster) Kill(id int32) {
	c.t.Helper()
	if err := c.Node(id).Kill(); err != nil {
		c.t.Fatalf("e2e: kill %d: %v", id, err)
	}
}

// Restart starts broker id again on its data directory and port.
func (c *Cluster) Restart(id int32) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Node(id).Restart(ctx); err != nil {
		c.t.Fatalf("e2e: restart %d: %v", id, err)
	}
}

// ReadPartition reads topic-p from the start with a consumer until it has seen the value
// last, and returns every value read; it fails the test after 15s.
func (c *Cluster) ReadPartition(topic string, p int32, last string) []string {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		c.t.Fatal(err)
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
	c.t.Fatalf("e2e: read %s-%d: %q not seen within 15s; read %d records", topic, p, last, len(out))
	return nil
}
