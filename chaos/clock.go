package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kchaos/kchaos/broker/clock"
	"github.com/kchaos/kchaos/chaos/proxy"
)

// clockModes composes the clock faults in force on each broker: the control file holds their
// sum, so overlapping faults add up and each end removes exactly its own.
type clockModes struct {
	mu    sync.Mutex // guards modes
	modes map[int32]map[int64]clock.Mode
}

// set records (m non-zero) or forgets fault id's mode on node and returns the sum in force.
func (c *clockModes) set(node int32, id int64, m clock.Mode, on bool) clock.Mode {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.modes == nil {
		c.modes = map[int32]map[int64]clock.Mode{}
	}
	if c.modes[node] == nil {
		c.modes[node] = map[int64]clock.Mode{}
	}
	if on {
		c.modes[node][id] = m
	} else {
		delete(c.modes[node], id)
	}
	var sum clock.Mode
	for _, fm := range c.modes[node] {
		sum.Offset += fm.Offset
		if fm.StrobeDelta != 0 {
			sum.StrobeDelta += fm.StrobeDelta
			if sum.StrobePeriod == 0 || fm.StrobePeriod < sum.StrobePeriod {
				sum.StrobePeriod = fm.StrobePeriod
			}
		}
	}
	return sum
}

// clockMode is what clock fault f does to a broker's clock.
func clockMode(f Fault) clock.Mode {
	switch f.Kind {
	case ClockBump:
		return clock.Mode{Offset: f.paramSigned("delta", time.Minute)}
	case ClockStrobe:
		return clock.Mode{StrobeDelta: f.paramSigned("delta", 10*time.Second), StrobePeriod: f.paramDuration("period", 100*time.Millisecond)}
	}
	return clock.Mode{Offset: f.paramSigned("offset", 30*time.Second)}
}

// clockFault does clock fault f to broker node through its clock control file, and returns
// once the broker's next clock read sees it.
func (d *Local) clockFault(ctx context.Context, reg *Registry, id int64, f Fault, node int32) error {
	if _, ok := d.Nodes[node]; !ok {
		return fmt.Errorf("chaos: %s: broker %d is not in this local cluster", f.Kind, node)
	}
	dir, err := d.dataDir(node)
	if err != nil {
		return err
	}
	sum := d.clocks.set(node, id, clockMode(f), true)
	if err := clock.SetMode(dir, sum); err != nil {
		d.clocks.set(node, id, clock.Mode{}, false)
		return fmt.Errorf("chaos: %s broker %d: %w", f.Kind, node, err)
	}
	rec := Record{Fault: id, Action: "clock-fault", Node: node, Path: filepath.Join(dir, clock.ControlFile), Undo: "clear"}
	reg.Add(rec, func(ctx context.Context) error {
		if err := clock.SetMode(dir, d.clocks.set(node, id, clock.Mode{}, false)); err != nil {
			return err
		}
		return settle(ctx)
	})
	return settle(ctx)
}

// clientClock skews the clients' clocks as brokers see them: every client link rewrites the
// CreateTime of the record batches produced through it.
func (d *Local) clientClock(reg *Registry, id int64, f Fault, r Resolved) error {
	if d.Net == nil {
		return fmt.Errorf("chaos: %s on clients: the cluster has no client-link proxies", f.Kind)
	}
	key := "fault-" + strconv.FormatInt(id, 10)
	im := proxy.Impairment{ClockSkew: f.paramSigned("offset", 30*time.Second)}
	links := d.Net.Impair(key, func(l LinkID) bool { return l.Plane == PlaneClient }, im)
	if len(links) == 0 {
		return fmt.Errorf("chaos: %s on clients: no client link to act on", f.Kind)
	}
	return d.recordImpair(reg, id, key, links)
}
