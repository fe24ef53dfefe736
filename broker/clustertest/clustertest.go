// Package clustertest is the fixture of replicated-cluster tests: it starts a local cluster of
// real `kchaos broker` processes (broker/local) with every broker→broker link routed through a
// proxy the test can cut, and offers the steps scenarios are written in — create a topic, wait
// for a leader, kill or restart a broker, cut a link, check for a condition — so each test
// reads like its scenario:
//
//	c := clustertest.Start(t, 3, clustertest.Set("replica.lag.time.max.ms", "2000"))
//	c.CreateTopic("t", 1, 3, map[string]string{"min.insync.replicas": "2"})
//	leader := c.WaitLeader("t", 0)
//	c.Kill(leader)
//	c.CheckFor(10*time.Second, "a new leader", func() error { ... })
//
// Processes are built with -race when the test is, and a data race a broker reports fails the
// test. Every test gets a seed (printed; set KCHAOS_SEED to replay) from Rand.
package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/internal/testkit"
)

// Cluster is a running test cluster.
type Cluster struct {
	t     testing.TB
	lc    *local.Cluster
	links map[link]*Proxy
	// Rand is the test's seeded random source.
	Rand *rand.Rand
	// Seed is Rand's seed.
	Seed uint64
}

type link struct {
	from, to int32
	raft     bool
}

// Option configures Start.
type Option func(*local.Config)

// Set passes a broker setting to every broker.
func Set(key, value string) Option {
	return func(c *local.Config) {
		if c.Props == nil {
			c.Props = map[string]string{}
		}
		c.Props[key] = value
	}
}

// Start launches brokers brokers and waits until every one is registered with an active
// controller. Everything stops when the test ends.
func Start(t testing.TB, brokers int, opts ...Option) *Cluster {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	seed := testkit.Seed(t)
	c := &Cluster{t: t, links: map[link]*Proxy{}, Seed: seed, Rand: rand.New(rand.NewPCG(seed, seed))}
	cfg := local.Config{Brokers: brokers, Dir: t.TempDir(), Binary: bin, Metrics: true,
		StartTimeout: 60 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	cfg.Route = func(from, to int32, raft bool, addr string) string {
		p, err := NewProxy(addr)
		if err != nil {
			t.Fatalf("clustertest: proxy %d->%d: %v", from, to, err)
		}
		if old := c.links[link{from, to, raft}]; old != nil {
			old.Close() // Start retried on new ports
		}
		c.links[link{from, to, raft}] = p
		return p.Addr()
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lc, err := local.Start(ctx, cfg)
	if err != nil {
		for _, p := range c.links {
			p.Close()
		}
		t.Fatalf("clustertest: start %d brokers: %v (seed %d)", brokers, err, seed)
	}
	c.lc = lc
	t.Cleanup(c.cleanup)
	return c
}

func (c *Cluster) cleanup() {
	c.lc.Stop()
	for _, p := range c.links {
		p.Close()
	}
	for _, n := range c.lc.Nodes {
		<-n.Done()
		log := n.Log()
		if strings.Contains(log, "WARNING: DATA RACE") {
			c.t.Errorf("clustertest: broker %d reported a data race:\n%s", n.ID, log)
		}
	}
	if c.t.Failed() {
		for _, n := range c.lc.Nodes {
			if data, err := os.ReadFile(n.LogPath); err == nil {
				c.t.Logf("broker %d log (tail, raft retry noise dropped):\n%s", n.ID, tail(quiet(string(data)), 4<<10))
			}
		}
		c.t.Logf("clustertest: seed %d", c.Seed)
	}
}

// quiet drops the raft library's per-retry lines (failed heartbeats and appends to a dead
// peer), which otherwise fill a failed test's log tail.
func quiet(log string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "raft: failed to") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Bootstrap returns the brokers' client addresses.
func (c *Cluster) Bootstrap() []string { return c.lc.Bootstrap() }

// Node returns broker id's process handle.
func (c *Cluster) Node(id int32) *local.Node { return c.lc.Node(id) }

// Client returns a franz-go client of the cluster (closed when the test ends) with opts added.
// Idempotent writes are off, so that acks=1 clients work (franz-go's idempotent producer
// requires acks=all); idempotence tests build their own producers.
func (c *Cluster) Client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(c.Bootstrap()...), kgo.DisableIdempotentWrite(),
		kgo.MetadataMinAge(50 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// request sends one request to any live broker.
func (c *Cluster) request(req kmsg.Request) (kmsg.Response, error) { return c.requestTo(-1, req) }

// requestTo sends one request through a short-lived client seeded with broker id only (-1: every
// live broker), so the answer is that broker's own view.
func (c *Cluster) requestTo(id int32, req kmsg.Request) (kmsg.Response, error) {
	var seeds []string
	for _, n := range c.lc.Nodes {
		if n.Running() && (id < 0 || n.ID == id) {
			seeds = append(seeds, n.Addr())
		}
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("clustertest: broker %d is not running", id)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return cl.Request(ctx, req)
}

// CreateTopic creates a topic and waits until every partition has a leader.
func (c *Cluster) CreateTopic(name string, partitions int32, rf int16, configs map[string]string) {
	c.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := c.request(req)
	if err != nil {
		c.t.Fatalf("clustertest: create topic %s: %v", name, err)
	}
	if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		c.t.Fatalf("clustertest: create topic %s: error code %d", name, code)
	}
	for p := range partitions {
		c.WaitLeader(name, p)
	}
}

// AlterTopicConfig sets a topic config.
func (c *Cluster) AlterTopicConfig(topic, key, value string) {
	c.t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value, cfg.Op = key, kmsg.StringPtr(value), kmsg.IncrementalAlterConfigOpSet
	rr.Configs = append(rr.Configs, cfg)
	req.Resources = append(req.Resources, rr)
	resp, err := c.request(req)
	if err != nil {
		c.t.Fatalf("clustertest: alter %s %s=%s: %v", topic, key, value, err)
	}
	if code := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != 0 {
		c.t.Fatalf("clustertest: alter %s %s=%s: error code %d", topic, key, value, code)
	}
}

// PartitionState is a partition as Metadata shows it.
type PartitionState struct {
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

// Partition returns the partition's state as a live broker reports it.
func (c *Cluster) Partition(topic string, partition int32) (PartitionState, error) {
	return c.PartitionAt(-1, topic, partition)
}

// PartitionAt is Partition as broker id's metadata image shows it (-1: any live broker). A
// leader acts on its own image, which can trail the controller's by a heartbeat.
func (c *Cluster) PartitionAt(id int32, topic string, partition int32) (PartitionState, error) {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	resp, err := c.requestTo(id, req)
	if err != nil {
		return PartitionState{}, err
	}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		for _, p := range t.Partitions {
			if p.Partition == partition {
				return PartitionState{p.Leader, p.LeaderEpoch, p.Replicas, p.ISR}, nil
			}
		}
	}
	return PartitionState{}, fmt.Errorf("clustertest: %s-%d not in metadata", topic, partition)
}

// Controller returns the active controller's id as a live broker reports it (-1: none).
func (c *Cluster) Controller() int32 {
	resp, err := c.request(kmsg.NewPtrMetadataRequest())
	if err != nil {
		return -1
	}
	return resp.(*kmsg.MetadataResponse).ControllerID
}

// WaitLeader waits up to 30s for the partition to have a live leader and returns it.
func (c *Cluster) WaitLeader(topic string, partition int32) int32 {
	c.t.Helper()
	var leader int32
	c.CheckFor(30*time.Second, fmt.Sprintf("a leader of %s-%d", topic, partition), func() error {
		st, err := c.Partition(topic, partition)
		if err != nil {
			return err
		}
		if st.Leader < 0 || !c.Node(st.Leader).Running() {
			return fmt.Errorf("leader is %d", st.Leader)
		}
		leader = st.Leader
		return nil
	})
	return leader
}

// CheckFor polls cond every 50ms until it returns nil, failing the test after timeout with
// cond's last error.
func (c *Cluster) CheckFor(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("clustertest: no %s within %s: %v (seed %d)", what, timeout, err, c.Seed)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL to broker id and waits for it to exit.
func (c *Cluster) Kill(id int32) {
	c.t.Helper()
	if err := c.Node(id).Kill(); err != nil {
		c.t.Fatalf("clustertest: kill %d: %v", id, err)
	}
}

// Restart starts broker id again on its data directory and port.
func (c *Cluster) Restart(id int32) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Node(id).Restart(ctx); err != nil {
		c.t.Fatalf("clustertest: restart %d: %v", id, err)
	}
}

// Cut cuts broker from's Kafka link to broker to (replica fetches from → to); Heal restores
// it.
func (c *Cluster) Cut(from, to int32) { c.links[link{from, to, false}].Cut() }

// Heal restores a link Cut cut.
func (c *Cluster) Heal(from, to int32) { c.links[link{from, to, false}].Heal() }

// CutControl cuts broker from's link to voter to's controller listener (Raft traffic and
// controller requests such as heartbeats from → to); HealControl restores it.
func (c *Cluster) CutControl(from, to int32) { c.links[link{from, to, true}].Cut() }

// HealControl restores a link CutControl cut.
func (c *Cluster) HealControl(from, to int32) { c.links[link{from, to, true}].Heal() }

// Others returns the broker ids other than those given, ascending.
func (c *Cluster) Others(ids ...int32) []int32 {
	var out []int32
	for _, n := range c.lc.Nodes {
		if !slices.Contains(ids, n.ID) {
			out = append(out, n.ID)
		}
	}
	return out
}

// Voter reports whether broker id is a controller-quorum voter (brokers 1..3).
func Voter(id int32) bool { return id >= 1 && id <= 3 }
