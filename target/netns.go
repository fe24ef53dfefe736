package target

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/rundir"
)

// NetnsConfig describes an embedded cluster in network namespaces.
type NetnsConfig struct {
	// Brokers is the number of broker processes; default 1.
	Brokers int
	// Dir receives the fabric's journal (Dir/netns), the brokers' data and logs
	// (Dir/cluster/node-N) and the resources file; required.
	Dir string
	// Props are broker settings, as in EmbeddedConfig.
	Props map[string]string
	// Binary is the kchaos executable; default the running executable.
	Binary string
	// Logger receives the launcher's events and what could not be removed; default
	// slog.Default().
	Logger *slog.Logger
	// DiskSize is the size of each broker's tmpfs data directory in bytes; required.
	DiskSize int64
	// StartTimeout and StopTimeout are as in EmbeddedConfig.
	StartTimeout, StopTimeout time.Duration
}

// Netns is an embedded cluster whose brokers each run in a network namespace of a
// chaos.Fabric, on a tmpfs data directory: faults act on real packets (nftables rules, tc
// qdiscs) and a full disk is a filled tmpfs. It needs root on Linux (chaos.NetnsAvailable).
type Netns struct {
	fabric   *chaos.Fabric
	cluster  *local.Cluster
	driver   *chaos.Netns
	resolver *chaos.KafkaResolver
	sampler  *Sampler
	dir      string
	logger   *slog.Logger
	ctx      context.Context

	closeOnce sync.Once
	closeErr  error
}

var _ Target = (*Netns)(nil)

// StartNetns builds a fabric of cfg.Brokers namespaces journalled in cfg.Dir, mounts each
// broker's data directory, and starts the brokers in their namespaces. On error it removes
// whatever it made.
func StartNetns(ctx context.Context, cfg NetnsConfig) (*Netns, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	brokers := max(1, cfg.Brokers)
	fab, err := chaos.NewFabric(ctx, cfg.Dir, brokers)
	if err != nil {
		return nil, err
	}
	n := &Netns{fabric: fab, dir: cfg.Dir, logger: cfg.Logger, ctx: context.WithoutCancel(ctx)}
	lc := localConfig(EmbeddedConfig{Dir: cfg.Dir, Props: cfg.Props, Binary: cfg.Binary, Logger: cfg.Logger,
		StartTimeout: cfg.StartTimeout, StopTimeout: cfg.StopTimeout, place: fab.Place}, brokers)
	// Cleared before the data file systems are mounted in it.
	if err := freshClusterDir(lc.Dir); err != nil {
		n.closeFabric()
		return nil, err
	}
	for id := 1; id <= brokers; id++ {
		// The launcher's layout: DIR/node-N/data.
		if err := fab.MountData(int32(id), filepath.Join(lc.Dir, "node-"+strconv.Itoa(id), "data"), cfg.DiskSize); err != nil {
			n.closeFabric()
			return nil, err
		}
	}
	if n.cluster, err = local.Start(ctx, lc); err != nil {
		n.closeFabric()
		return nil, err
	}
	n.sampler = startClusterSampler(n.cluster)
	n.driver = &chaos.Netns{Fabric: fab, Local: &chaos.Local{Nodes: map[int32]chaos.Process{}}}
	for _, nd := range n.cluster.Nodes {
		n.driver.Local.Nodes[nd.ID] = nd
	}
	if n.resolver, err = chaos.NewKafkaResolver(n.cluster.Bootstrap()); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// closeFabric removes the fabric, logging what could not be removed.
func (n *Netns) closeFabric() error {
	err := n.fabric.Close(n.ctx)
	if err != nil {
		n.logger.Error("netns fabric not fully removed; run kchaos chaos heal on the run directory", "dir", n.dir, "err", err)
	}
	return err
}

// Bootstrap returns the brokers' addresses in their namespaces.
func (n *Netns) Bootstrap() []string { return n.cluster.Bootstrap() }

// Driver returns the netns driver.
func (n *Netns) Driver() chaos.Driver { return n.driver }

// Resolver returns a KafkaResolver on the cluster.
func (n *Netns) Resolver() chaos.Resolver { return n.resolver }

// Sampler returns the brokers' resource sampler.
func (n *Netns) Sampler() *Sampler { return n.sampler }

// Cluster returns the broker processes.
func (n *Netns) Cluster() *local.Cluster { return n.cluster }

// Fabric returns the namespaces, links and mounts the brokers run in.
func (n *Netns) Fabric() *chaos.Fabric { return n.fabric }

// Close writes the sampler's resources file, stops the brokers and removes the fabric
// (namespaces, links, mounts).
func (n *Netns) Close() error {
	n.closeOnce.Do(func() {
		if n.resolver != nil {
			n.resolver.Close()
		}
		if n.sampler != nil {
			n.closeErr = n.sampler.StopAndWrite(filepath.Join(n.dir, rundir.ResourcesFile))
		}
		if n.cluster != nil {
			if err := n.cluster.Stop(); err != nil && !errors.Is(err, context.Canceled) {
				n.logger.Warn("stopping the netns cluster", "err", err)
			}
		}
		n.closeErr = errors.Join(n.closeErr, n.closeFabric())
	})
	return n.closeErr
}
