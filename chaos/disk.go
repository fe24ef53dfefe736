package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kchaos/kchaos/broker/controlfile"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/broker/storage/faultfs"
)

// dataDir returns broker node's data directory: DataDirs[node], else the DataDir of a
// *local.Node process.
func (d *Local) dataDir(node int32) (string, error) {
	if dir, ok := d.DataDirs[node]; ok {
		return dir, nil
	}
	if n, ok := d.Nodes[node].(*local.Node); ok && n.DataDir != "" {
		return n.DataDir, nil
	}
	return "", fmt.Errorf("chaos: broker %d: no data directory known for disk faults", node)
}

// settle waits until every I/O call or clock read a broker makes from now on sees a control
// file change made before: two controlfile.CheckInterval.
func settle(ctx context.Context) error {
	select {
	case <-time.After(2 * controlfile.CheckInterval):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// disk does disk fault f to broker node through its control file and sync journal (package
// faultfs). Disk-full and disk-slow write the control file and clear it when undone, and
// return once the broker's next I/O call sees the change; two of
// them overlapping on one broker leave the later in force, and undoing either clears it.
// Lose-unsynced kills the broker, drops what it did not fsync and restarts it.
func (d *Local) disk(ctx context.Context, reg *Registry, id int64, f Fault, node int32) error {
	p, ok := d.Nodes[node]
	if !ok {
		return fmt.Errorf("chaos: %s: broker %d is not in this local cluster", f.Kind, node)
	}
	dir, err := d.dataDir(node)
	if err != nil {
		return err
	}
	switch f.Kind {
	case DiskFull, DiskSlow, IOError:
		m := faultfs.Mode{Full: true}
		switch f.Kind {
		case DiskSlow:
			m = faultfs.Mode{Slow: f.paramDuration("delay", 0)}
		case IOError:
			var err error
			if m, err = ioErrorMode(f); err != nil {
				return err
			}
		}
		if err := faultfs.SetMode(dir, m); err != nil {
			return fmt.Errorf("chaos: %s broker %d: %w", f.Kind, node, err)
		}
		rec := Record{Fault: id, Action: "disk-fault", Node: node, Path: filepath.Join(dir, faultfs.ControlFile), Undo: "clear"}
		reg.Add(rec, func(ctx context.Context) error {
			if err := faultfs.SetMode(dir, faultfs.Mode{}); err != nil {
				return err
			}
			return settle(ctx)
		})
		return settle(ctx)
	case CorruptFile:
		return d.corruptFile(ctx, reg, id, f, node, p, dir)
	case LoseUnsynced:
		rec := processRecord(id, "lose-unsynced", node, p)
		rec.Path, rec.Undo = dir, "restart"
		if err := p.Kill(); err != nil && p.Running() {
			return fmt.Errorf("chaos: lose-unsynced: kill broker %d: %w", node, err)
		}
		seq := reg.Add(rec, func(ctx context.Context) error {
			if p.Running() {
				return nil
			}
			return p.Restart(ctx)
		})
		_, derr := faultfs.DropUnsynced(dir)
		if derr != nil {
			derr = fmt.Errorf("chaos: lose-unsynced broker %d: %w", node, derr)
		}
		return errors.Join(derr, reg.Undo(ctx, seq))
	}
	return fmt.Errorf("chaos: the local driver cannot do %s", f.Kind)
}

// ioErrorMode is the faultfs mode of an io-error fault.
func ioErrorMode(f Fault) (faultfs.Mode, error) {
	ops, err := faultfs.ParseOps(f.param("ops", "write,fsync"))
	if err != nil {
		return faultfs.Mode{}, fmt.Errorf("chaos: %s: %w", f.Kind, err)
	}
	m := faultfs.Mode{Errno: syscall.EIO, Ops: ops, Rate: f.paramRate("rate", 1)}
	if f.param("errno", "EIO") == "ENOSPC" {
		m.Errno = syscall.ENOSPC
	}
	return m, nil
}
