package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"strconv"

	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/workloads"
)

// targetOpts choose how `kchaos run` builds its embedded cluster's chaos driver.
type targetOpts struct {
	// driver is "local" (default) or "netns".
	driver string
	// netnsDisk is the size of each broker's tmpfs data directory under netns.
	netnsDisk string
}

// validate checks the options before any cluster starts.
func (o targetOpts) validate() error {
	switch o.driver {
	case "", "local":
		return nil
	case "netns":
		if _, err := workloads.ParseSize(o.netnsDisk); err != nil {
			return fmt.Errorf("run: --netns-disk %q: %w", o.netnsDisk, err)
		}
		return chaos.NetnsAvailable()
	}
	return fmt.Errorf("run: --chaos-driver %q: want local or netns", o.driver)
}

// startNetnsTarget starts the embedded cluster of rc with every broker in a network namespace
// of a new chaos.Fabric (journalled in dir/netns) on a tmpfs data directory, and returns its
// bootstrap addresses, the netns driver, and done, which stops the brokers and removes the
// fabric (namespaces, links, mounts).
func startNetnsTarget(ctx context.Context, rc workloads.RunConfig, dir string, props map[string]string, logger *slog.Logger, o targetOpts) ([]string, chaos.Driver, func(), error) {
	size, err := workloads.ParseSize(o.netnsDisk)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("run: --netns-disk %q: %w", o.netnsDisk, err)
	}
	brokers := max(1, rc.ReplicationFactor)
	fab, err := chaos.NewFabric(ctx, dir, brokers)
	if err != nil {
		return nil, nil, nil, err
	}
	closeFabric := func() {
		if err := fab.Close(context.WithoutCancel(ctx)); err != nil {
			logger.Error("netns fabric not fully removed; run kchaos chaos heal on the run directory", "dir", dir, "err", err)
		}
	}
	cfg := local.Config{Brokers: brokers, Dir: filepath.Join(dir, "cluster"), Metrics: true, Logger: logger,
		Props: map[string]string{"group.initial.rebalance.delay.ms": "0"}, Place: fab.Place}
	maps.Copy(cfg.Props, props)
	for id := 1; id <= brokers; id++ {
		// The launcher's layout: DIR/node-N/data.
		if err := fab.MountData(int32(id), filepath.Join(cfg.Dir, "node-"+strconv.Itoa(id), "data"), int64(size)); err != nil {
			closeFabric()
			return nil, nil, nil, err
		}
	}
	c, err := local.Start(ctx, cfg)
	if err != nil {
		closeFabric()
		return nil, nil, nil, err
	}
	stopSampler := startSampler(c, dir)
	drv := &chaos.Netns{Fabric: fab, Local: &chaos.Local{Nodes: map[int32]chaos.Process{}}}
	for _, n := range c.Nodes {
		drv.Local.Nodes[n.ID] = n
	}
	done := func() {
		stopSampler()
		if err := c.Stop(); err != nil && !errors.Is(err, context.Canceled) {
			logger.Warn("stopping the netns cluster", "err", err)
		}
		closeFabric()
	}
	return c.Bootstrap(), drv, done, nil
}
