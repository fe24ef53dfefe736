package target

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/workloads"
)

// Target is one configuration's cluster, as a run acts on it.
type Target interface {
	// Bootstrap returns the brokers clients dial, host:port.
	Bootstrap() []string
	// Driver returns the chaos driver that makes faults on the cluster; nil when none can
	// reach it (an external cluster without a cluster file).
	Driver() chaos.Driver
	// Resolver reads the cluster's metadata when a fault starts, and for the observer.
	Resolver() chaos.Resolver
	// Sampler returns the resource sampler of the cluster's processes; nil when they are not
	// on this machine.
	Sampler() *Sampler
	// Close stops the sampler (writing its resources file), takes down whatever the target
	// started and releases what it holds. It is safe to call more than once.
	Close() error
}

// Spec says which target a run acts on. The zero Spec is an embedded cluster of local broker
// processes whose links go through chaos proxies.
type Spec struct {
	// Bootstrap, when set, names an external cluster (host:port, ...).
	Bootstrap []string
	// ClusterFile, with Bootstrap, is an ssh cluster file whose per-fault commands make faults
	// on the external cluster (see chaos.SSHCluster).
	ClusterFile string
	// ChaosDriver is the embedded cluster's driver: "local" (default: userspace link proxies)
	// or "netns" (root on Linux: each broker in its own network namespace).
	ChaosDriver string
	// NetnsDisk is the size of each broker's tmpfs data directory with the netns driver, as a
	// workload size ("256MiB"); default 256MiB.
	NetnsDisk string
	// Props are broker settings (server.properties names) given to every embedded broker, on
	// top of group.initial.rebalance.delay.ms=0 and, for more than one broker,
	// local.ClusterDefaults.
	Props map[string]string
	// Binary is the kchaos executable embedded brokers run; default the running executable.
	Binary string
	// Logger receives the launcher's and the fabric's warnings; default slog.Default().
	Logger *slog.Logger
}

// DefaultNetnsDisk is Spec.NetnsDisk's default.
const DefaultNetnsDisk = "256MiB"

// Validate checks the spec before anything starts: a known chaos driver, a netns disk size
// that parses and a machine that can build network namespaces, no netns driver for an
// external cluster. It does not read the cluster file; Open does.
func (s Spec) Validate() error {
	switch s.ChaosDriver {
	case "", "local":
		return nil
	case "netns":
		if _, err := s.netnsDiskBytes(); err != nil {
			return err
		}
		if err := chaos.NetnsAvailable(); err != nil {
			return err
		}
		if len(s.Bootstrap) > 0 {
			return errors.New("run: --chaos-driver netns starts its own cluster; it cannot drive --bootstrap")
		}
		return nil
	}
	return fmt.Errorf("run: --chaos-driver %q: want local or netns", s.ChaosDriver)
}

func (s Spec) netnsDiskBytes() (int64, error) {
	disk := s.NetnsDisk
	if disk == "" {
		disk = DefaultNetnsDisk
	}
	size, err := workloads.ParseSize(disk)
	if err != nil {
		return 0, fmt.Errorf("run: --netns-disk %q: %w", disk, err)
	}
	return int64(size), nil
}

// Provider starts the target of each configuration of a run; what lasts the whole run (the
// ssh driver of an external cluster) lives here.
type Provider struct {
	spec Spec
	ssh  *chaos.SSH
}

// Open validates spec and opens what its targets share: for an external cluster with a
// cluster file, the ssh driver (it connects on first use). Close it when the run is over.
func Open(spec Spec) (*Provider, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Logger == nil {
		spec.Logger = slog.Default()
	}
	p := &Provider{spec: spec}
	if spec.ClusterFile != "" {
		if len(spec.Bootstrap) == 0 {
			return nil, errors.New("run: --cluster-file drives faults on an external cluster; give its --bootstrap too")
		}
		cl, err := chaos.LoadSSHCluster(spec.ClusterFile)
		if err != nil {
			return nil, err
		}
		if p.ssh, err = chaos.NewSSH(cl); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Start starts (embedded) or connects to (external) the target of rc, keeping what it writes
// under dir: the embedded brokers' data and logs in dir/cluster, the netns fabric's journal,
// and the resources file. seed seeds the link proxies' random choices. client says how the
// target's own clients (the resolver) connect to an external cluster; nil is plaintext, which
// the embedded clusters speak.
func (p *Provider) Start(ctx context.Context, rc workloads.RunConfig, dir string, seed int64, client *clientconfig.Config) (Target, error) {
	brokers := max(1, rc.ReplicationFactor, rc.Brokers)
	switch {
	case len(p.spec.Bootstrap) > 0:
		return newExternal(p.spec.Bootstrap, p.ssh, client.FranzOpts()...)
	case p.spec.ChaosDriver == "netns":
		size, err := p.spec.netnsDiskBytes()
		if err != nil {
			return nil, err
		}
		return StartNetns(ctx, NetnsConfig{Brokers: brokers, Dir: dir, Props: p.spec.Props, Binary: p.spec.Binary,
			Logger: p.spec.Logger, DiskSize: size})
	default:
		return StartEmbedded(ctx, EmbeddedConfig{Brokers: brokers, Dir: dir, Props: p.spec.Props, Binary: p.spec.Binary,
			Logger: p.spec.Logger, Seed: seed})
	}
}

// Close releases what the run's targets shared.
func (p *Provider) Close() error {
	if p.ssh != nil {
		return p.ssh.Close()
	}
	return nil
}
