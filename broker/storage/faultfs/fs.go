package faultfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kchaos/kchaos/broker/controlfile"
	"github.com/kchaos/kchaos/broker/storage"
)

// FS is a storage.FS that injects the fault named by its control file and journals fsyncs.
// It is safe for concurrent use.
type FS struct {
	inner   storage.FS
	control string
	logger  *slog.Logger

	poll    controlfile.Poller
	mode    atomic.Pointer[Mode]
	badText string // control text last reported as malformed; guarded by poll (one rereader)

	mu      sync.Mutex // guards journal
	journal *os.File
}

var _ storage.FS = (*FS)(nil)

// New wraps inner for the broker whose data directory is dataDir (created if missing). It
// starts a fresh sync journal: what earlier lifetimes of the broker wrote counts as durable.
// logger (nil: slog.Default()) hears about malformed control files.
func New(inner storage.FS, dataDir string, logger *slog.Logger) (*FS, error) {
	if logger == nil {
		logger = slog.Default()
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	j, err := os.OpenFile(filepath.Join(abs, JournalFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("faultfs: journal: %w", err)
	}
	f := &FS{inner: inner, control: filepath.Join(abs, ControlFile), logger: logger, journal: j}
	f.mode.Store(&Mode{})
	f.reload()
	return f, nil
}

// Close closes the sync journal.
func (f *FS) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.journal == nil {
		return nil
	}
	err := f.journal.Close()
	f.journal = nil
	return err
}

// Mode returns the fault in force, rereading the control file if CheckInterval has passed.
func (f *FS) Mode() Mode {
	if f.poll.Due() {
		f.reload()
	}
	return *f.mode.Load()
}

// reload reads the control file; a missing or malformed file is no fault.
func (f *FS) reload() {
	b, err := os.ReadFile(f.control)
	m := Mode{}
	if err == nil {
		pm, perr := ParseMode(string(b))
		if perr != nil && f.badText != string(b) {
			f.badText = string(b)
			f.logger.Warn("faultfs: ignoring control file", "err", perr)
		}
		if perr == nil {
			m = pm
		}
	}
	if cur := f.mode.Load(); *cur != m {
		f.logger.Info("faultfs: disk fault changed", "from", cur.String(), "to", m.String())
		f.mode.Store(&m)
	}
}

// enospc is the error a full disk gives op on name.
func enospc(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: syscall.ENOSPC}
}

// before applies the fault in force to a write-like call: it fails on a full disk and sleeps
// on a slow one.
func (f *FS) before(op, name string) error {
	m := f.Mode()
	if m.Full {
		return enospc(op, name)
	}
	if m.Slow > 0 {
		time.Sleep(m.Slow)
	}
	kind := OpWrite
	if op == "fsync" {
		kind = OpFsync
	}
	return injected(m, kind, op, name)
}

// injected returns the error m injects into a call of kind, or nil (by chance m.Rate).
func injected(m Mode, kind Ops, op, name string) error {
	if m.Errno == 0 || m.Ops&kind == 0 || (m.Rate > 0 && m.Rate < 1 && rand.Float64() >= m.Rate) {
		return nil
	}
	return &os.PathError{Op: op, Path: name, Err: m.Errno}
}

// note appends one entry to the sync journal. A journal that cannot be written is closed and
// reported once: DropUnsynced then refuses to guess.
func (f *FS) note(e entry) {
	if p, err := filepath.Abs(e.Path); err == nil {
		e.Path = p
	}
	if e.To != "" {
		if p, err := filepath.Abs(e.To); err == nil {
			e.To = p
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.journal == nil {
		return
	}
	if _, err := f.journal.Write(append(b, '\n')); err != nil {
		f.logger.Error("faultfs: sync journal write failed; lose-unsynced faults cannot run", "err", err)
		f.journal.Close()
		f.journal = nil
	}
}

// OpenFile opens name; creating a file fails on a full disk.
func (f *FS) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	existed := true
	if flag&os.O_CREATE != 0 {
		if _, err := f.inner.Stat(name); errors.Is(err, os.ErrNotExist) {
			existed = false
		}
	}
	if !existed || (writable && flag&os.O_TRUNC != 0) {
		m := f.Mode()
		if m.Full {
			return nil, enospc("open", name)
		}
		if err := injected(m, OpWrite, "open", name); err != nil {
			return nil, err
		}
	}
	inner, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	switch {
	case !existed || (writable && flag&os.O_TRUNC != 0):
		f.note(entry{Op: opCreate, Path: name, New: !existed})
	case writable:
		if st, err := inner.Stat(); err == nil {
			f.note(entry{Op: opOpen, Path: name, Size: st.Size()})
		}
	}
	w := &file{File: inner, fs: f}
	if of, ok := inner.(storage.OSFile); ok {
		return &osBacked{file: w, os: of.OSFile()}, nil
	}
	return w, nil
}

// Remove removes name.
func (f *FS) Remove(name string) error {
	if err := f.inner.Remove(name); err != nil {
		return err
	}
	f.note(entry{Op: opRemove, Path: name})
	return nil
}

// Rename renames oldpath to newpath; it fails on a full disk.
func (f *FS) Rename(oldpath, newpath string) error {
	if f.Mode().Full {
		return enospc("rename", oldpath)
	}
	if err := f.inner.Rename(oldpath, newpath); err != nil {
		return err
	}
	f.note(entry{Op: opRename, Path: oldpath, To: newpath})
	return nil
}

// MkdirAll creates path; it fails on a full disk when path does not exist yet.
func (f *FS) MkdirAll(path string, perm os.FileMode) error {
	if _, err := f.inner.Stat(path); err != nil && f.Mode().Full {
		return enospc("mkdir", path)
	}
	return f.inner.MkdirAll(path, perm)
}

// ReadDir lists name.
func (f *FS) ReadDir(name string) ([]os.DirEntry, error) { return f.inner.ReadDir(name) }

// Stat describes name.
func (f *FS) Stat(name string) (os.FileInfo, error) { return f.inner.Stat(name) }

// SyncDir fsyncs directory name, making its creations, renames and removals durable.
func (f *FS) SyncDir(name string) error {
	if err := f.before("fsync", name); err != nil {
		return err
	}
	if err := f.inner.SyncDir(name); err != nil {
		return err
	}
	f.note(entry{Op: opSyncDir, Path: name})
	return nil
}

// file is one open file of FS.
type file struct {
	storage.File
	fs *FS
}

// Write appends p; it fails on a full disk without writing anything, and sleeps on a slow one.
func (w *file) Write(p []byte) (int, error) {
	if err := w.fs.before("write", w.Name()); err != nil {
		return 0, err
	}
	return w.File.Write(p)
}

// Sync fsyncs the file and journals its size as durable.
func (w *file) Sync() error {
	if err := w.fs.before("fsync", w.Name()); err != nil {
		return err
	}
	if err := w.File.Sync(); err != nil {
		return err
	}
	st, err := w.File.Stat()
	if err != nil {
		return err
	}
	w.fs.note(entry{Op: opSync, Path: w.Name(), Size: st.Size()})
	return nil
}

// ReadAt reads from the file; it fails when read errors are injected.
func (w *file) ReadAt(p []byte, off int64) (int, error) {
	if err := injected(w.fs.Mode(), OpRead, "read", w.Name()); err != nil {
		return 0, err
	}
	return w.File.ReadAt(p, off)
}

// Truncate cuts or extends the file to size; it works on a full disk, which is what lets the
// log undo a failed write.
func (w *file) Truncate(size int64) error {
	if err := w.File.Truncate(size); err != nil {
		return err
	}
	w.fs.note(entry{Op: opTruncate, Path: w.Name(), Size: size})
	return nil
}

// osBacked is a file whose inner file is a real *os.File, kept for sendfile.
type osBacked struct {
	*file
	os *os.File
}

var (
	_ storage.File   = (*file)(nil)
	_ storage.OSFile = (*osBacked)(nil)
)

// OSFile returns the underlying *os.File, or nil while read errors are injected, so the
// broker reads through ReadAt (which fails) instead of handing the file to sendfile.
func (o *osBacked) OSFile() *os.File {
	if m := o.fs.Mode(); m.Errno != 0 && m.Ops&OpRead != 0 {
		return nil
	}
	return o.os
}
