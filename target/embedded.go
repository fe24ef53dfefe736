package target

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/rundir"
)

// EmbeddedConfig describes an embedded cluster.
type EmbeddedConfig struct {
	// Brokers is the number of broker processes; default 1.
	Brokers int
	// Dir receives the brokers' data and logs (Dir/cluster/node-N) and the resources file;
	// required.
	Dir string
	// Props are broker settings on top of group.initial.rebalance.delay.ms=0 (and, for more
	// than one broker, local.ClusterDefaults).
	Props map[string]string
	// Binary is the kchaos executable; default the running executable.
	Binary string
	// Logger receives the launcher's events; default slog.Default().
	Logger *slog.Logger
	// Seed seeds the link proxies' random choices (loss, drops).
	Seed int64
	// StartTimeout bounds the wait for a broker to accept connections; default 30s.
	StartTimeout time.Duration
	// StopTimeout is how long a graceful stop waits before SIGKILL; default 10s.
	StopTimeout time.Duration
	// place, when set, is local.Config.Place (the netns target sets it).
	place func(id int32) (string, []string)
}

// Embedded is a local cluster of `kchaos broker` processes started for one configuration.
// With more than one broker every directed link — clients to each broker, broker to broker
// for Kafka and for the controller quorum — goes through a chaos.Net proxy, so the Local
// driver can cut, slow or drop it; process faults act on the processes.
type Embedded struct {
	cluster  *local.Cluster
	net      *chaos.Net
	driver   *chaos.Local
	resolver *chaos.KafkaResolver
	sampler  *Sampler
	dir      string
	logger   *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

var _ Target = (*Embedded)(nil)

// StartEmbedded starts the cluster of cfg, its link proxies and its resource sampler. On
// error it stops whatever it started.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	brokers := max(1, cfg.Brokers)
	net := chaos.NewNet(cfg.Seed)
	lc := localConfig(cfg, brokers)
	var routeErr error
	lc.Route = func(from, to int32, raft bool, addr string) string {
		id := chaos.LinkID{From: from, To: to, Plane: chaos.PlaneKafka}
		switch {
		case from == local.ClientLinks:
			id = chaos.LinkID{From: chaos.Clients, To: to, Plane: chaos.PlaneClient}
		case raft:
			id.Plane = chaos.PlaneRaft
		}
		if a := net.Addr(id); a != "" {
			// Start retried on new ports: same proxy, new upstream.
			net.SetUpstream(id.To, id.Plane, addr)
			return a
		}
		p, err := net.Add(id, addr)
		if err != nil {
			routeErr = errors.Join(routeErr, err)
			return addr
		}
		return p.Addr()
	}
	if err := freshClusterDir(lc.Dir); err != nil {
		net.Close()
		return nil, err
	}
	c, err := local.Start(ctx, lc)
	if err != nil {
		net.Close()
		return nil, err
	}
	e := &Embedded{cluster: c, net: net, dir: cfg.Dir, logger: cfg.Logger,
		driver: &chaos.Local{Nodes: map[int32]chaos.Process{}}}
	if routeErr != nil {
		e.Close()
		return nil, routeErr
	}
	e.sampler = startClusterSampler(c)
	if brokers > 1 {
		e.driver.Net = net
	}
	for _, n := range c.Nodes {
		e.driver.Nodes[n.ID] = n
	}
	if brokers > 1 {
		e.driver.AddNode = func(ctx context.Context) (int32, chaos.Process, error) {
			n, err := c.AddNode(ctx)
			if err != nil {
				return 0, nil, err
			}
			return n.ID, n, nil
		}
	}
	if e.resolver, err = chaos.NewKafkaResolver(c.Bootstrap()); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// freshClusterDir removes a cluster folder an earlier run into the same run directory left
// (its broker logs, and its data when it was kept): brokers would boot from that run's
// metadata and logs, and append their logs to its.
func freshClusterDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("target: clear the previous run's cluster folder: %w", err)
	}
	return nil
}

// localConfig is the launcher's configuration of cfg.
func localConfig(cfg EmbeddedConfig, brokers int) local.Config {
	lc := local.Config{Brokers: brokers, Dir: filepath.Join(cfg.Dir, "cluster"), Metrics: true, Logger: cfg.Logger,
		Binary: cfg.Binary, StartTimeout: cfg.StartTimeout, StopTimeout: cfg.StopTimeout, Place: cfg.place,
		Props: map[string]string{"group.initial.rebalance.delay.ms": "0"}}
	maps.Copy(lc.Props, cfg.Props)
	return lc
}

// startClusterSampler samples every broker process of c (CPU, RSS, disk writes, Prometheus
// metrics), following restarts.
func startClusterSampler(c *local.Cluster) *Sampler {
	return StartSampler(SamplerConfig{Targets: func() []SampleTarget {
		var ts []SampleTarget
		for _, n := range c.Nodes {
			ts = append(ts, SampleTarget{Name: fmt.Sprintf("broker-%d", n.ID), Pid: n.Pid(), MetricsAddr: n.MetricsAddr()})
		}
		return ts
	}})
}

// Bootstrap returns the brokers' client addresses (their client-link proxies when there is
// more than one broker).
func (e *Embedded) Bootstrap() []string { return e.cluster.Bootstrap() }

// Driver returns the Local driver of the brokers and, with more than one broker, their links.
func (e *Embedded) Driver() chaos.Driver { return e.driver }

// Resolver returns a KafkaResolver on the cluster.
func (e *Embedded) Resolver() chaos.Resolver { return e.resolver }

// Sampler returns the brokers' resource sampler.
func (e *Embedded) Sampler() *Sampler { return e.sampler }

// Cluster returns the broker processes.
func (e *Embedded) Cluster() *local.Cluster { return e.cluster }

// Net returns the link proxies (none with a single broker).
func (e *Embedded) Net() *chaos.Net { return e.net }

// Close writes the sampler's resources file, stops the brokers and closes the proxies.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		if e.resolver != nil {
			e.resolver.Close()
		}
		if e.sampler != nil {
			e.closeErr = e.sampler.StopAndWrite(filepath.Join(e.dir, rundir.ResourcesFile))
		}
		if err := e.cluster.Stop(); err != nil && !errors.Is(err, context.Canceled) {
			e.closeErr = errors.Join(e.closeErr, err)
		}
		e.closeErr = errors.Join(e.closeErr, e.net.Close())
	})
	return e.closeErr
}
