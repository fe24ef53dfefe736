package run

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/rundir"
)

// DefaultMinFree is how much free space the run directory's file system must keep while a
// configuration runs (Options.MinFree): 2 GiB.
const DefaultMinFree = 2 << 30

// ErrDiskFull stops a run whose file system is about to fill: the configuration in progress
// stops its load, is still healed, checked and written, and the run ends after it.
var ErrDiskFull = errors.New("run: the disk is almost full")

// diskCheckInterval is how often the disk guard looks at the free space.
const diskCheckInterval = 250 * time.Millisecond

// freeBytes returns the bytes available to an unprivileged writer on dir's file system.
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// diskGuard watches the free space of a run directory's file system.
type diskGuard struct {
	// low is closed as soon as less than the minimum is free.
	low  chan struct{}
	err  error // why low closed; read after low is closed
	done chan struct{}
}

// guardDisk starts watching dir's file system: the guard's low channel closes, with the
// numbers in err, as soon as less than minFree bytes are available. stop ends the watch.
func guardDisk(dir string, minFree uint64) *diskGuard {
	g := &diskGuard{low: make(chan struct{}), done: make(chan struct{})}
	go func() {
		t := time.NewTicker(diskCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-g.done:
				return
			case <-t.C:
			}
			if free, err := freeBytes(dir); err == nil && free < minFree {
				g.err = fmt.Errorf("%w: %d MiB left on the file system of %s (the run keeps at least %d MiB free; free some space or lower --min-free)",
					ErrDiskFull, free>>20, dir, minFree>>20)
				close(g.low)
				return
			}
		}
	}()
	return g
}

// stop ends the watch and returns the error that closed low, or nil.
func (g *diskGuard) stop() error {
	close(g.done)
	select {
	case <-g.low:
		return g.err
	default:
		return nil
	}
}

// settle shrinks what a checked configuration leaves on disk: the history is compressed with
// zstd (kchaos check and report read it as it is), and unless keepData or the verdict failed,
// the embedded brokers' data directories are removed (their logs stay). It reports the bytes
// the configuration's folder holds afterwards.
func settle(dir string, failed, keepData bool) (int64, error) {
	if _, err := os.Stat(filepath.Join(dir, rundir.HistoryFile)); err == nil {
		if _, _, err := history.Compress(filepath.Join(dir, rundir.HistoryFile)); err != nil {
			return 0, err
		}
	}
	if !failed && !keepData {
		data, _ := filepath.Glob(filepath.Join(dir, "cluster", "node-*", "data"))
		for _, d := range data {
			if err := os.RemoveAll(d); err != nil {
				return 0, fmt.Errorf("run: remove broker data: %w", err)
			}
		}
	}
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, ierr := d.Info(); ierr == nil && !d.IsDir() {
			size += info.Size()
		}
		return nil
	})
	return size, err
}
