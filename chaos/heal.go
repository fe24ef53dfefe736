package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// JournalFile is the name of the action journal in a run directory.
const JournalFile = "chaos-actions.jsonl"

// Record is one change the chaos controller made to the world, or the undoing of one: a line
// of RUNDIR/chaos-actions.jsonl. A change whose "apply" line has no later "undo" line was not
// undone; `kchaos chaos heal RUNDIR` finishes the job after a crash of the harness.
type Record struct {
	// Seq numbers changes in the order they were made; an undo line repeats its change's Seq.
	Seq int64 `json:"seq"`
	// Op is "apply" or "undo".
	Op string `json:"op"`
	// Time is the wall-clock time, RFC 3339 with nanoseconds.
	Time string `json:"time"`
	// Fault is the fault instance id the change belongs to (0: none).
	Fault int64 `json:"fault,omitempty"`
	// Action is what was done: kill, stop, pause, impair, disk-fault, lose-unsynced, ssh; for
	// the netns driver netns, link, mount, nft-table, qdisc, fill.
	Action string `json:"action"`
	// Node is the broker acted on, when there is one.
	Node int32 `json:"node,omitempty"`
	// Pid, PidStart and Cmdline identify the process acted on, so a later heal touches it only
	// if it is still the same process (PidStart is the start time in clock ticks from
	// /proc/PID/stat).
	Pid      int      `json:"pid,omitempty"`
	PidStart uint64   `json:"pid_start,omitempty"`
	Cmdline  []string `json:"cmdline,omitempty"`
	// Links names impaired proxy links ("client->2", "1->3/kafka"); for an nft-table change,
	// the peer addresses its rules cut off.
	Links []string `json:"links,omitempty"`
	// Path is the disk or clock fault control file written (disk-fault, clock-fault), the data
	// directory (lose-unsynced) or the file damaged (corrupt-file).
	Path string `json:"path,omitempty"`
	// Netns is the network namespace a netns-driver change was made in ("": the root one).
	Netns string `json:"netns,omitempty"`
	// Object names what a netns-driver change created: a link, an nftables table, the device
	// of a qdisc, the source of a tmpfs mount; for corrupt-file, what was done to Path.
	Object string `json:"object,omitempty"`
	// Host is the SSH host an ssh change ran on.
	Host string `json:"host,omitempty"`
	// Undo says what undoes the change (restart, resume, clear; for ssh, the command to run on
	// Host).
	Undo string `json:"undo,omitempty"`
	// Error is set on an undo line when undoing failed.
	Error string `json:"error,omitempty"`
}

// Registry keeps every change with its undo, in memory and in the journal, so Heal can undo
// everything. It is safe for concurrent use.
type Registry struct {
	mu      sync.Mutex // guards everything below
	f       *os.File   // nil: memory only
	seq     int64
	pending []*change // in order of application
	err     error     // first journal write error
}

type change struct {
	rec  Record
	undo func(context.Context) error
}

// NewRegistry returns a registry that appends its journal to dir/chaos-actions.jsonl; dir ""
// keeps it in memory only.
func NewRegistry(dir string) (*Registry, error) {
	r := &Registry{}
	if dir == "" {
		return r, nil
	}
	f, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: journal: %w", err)
	}
	r.f = f
	return r, nil
}

// writeLocked appends rec to the journal and syncs it, so a crash right after a change
// still leaves its record. r.mu must be held.
func (r *Registry) writeLocked(rec Record) {
	if r.f == nil || r.err != nil {
		return
	}
	b, err := json.Marshal(rec)
	if err == nil {
		_, err = r.f.Write(append(b, '\n'))
	}
	if err == nil {
		err = r.f.Sync()
	}
	if err != nil {
		r.err = fmt.Errorf("chaos: journal: %w", err)
	}
}

// Add records a change already made and how to undo it (nil: nothing to do); it returns the
// change's Seq.
func (r *Registry) Add(rec Record, undo func(context.Context) error) int64 {
	if undo == nil {
		undo = func(context.Context) error { return nil }
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	rec.Seq, rec.Op, rec.Time = r.seq, "apply", time.Now().Format(time.RFC3339Nano)
	r.writeLocked(rec)
	r.pending = append(r.pending, &change{rec: rec, undo: undo})
	return rec.Seq
}

// undoOne runs c's undo and journals the outcome. A failed undo stays pending.
func (r *Registry) undoOne(ctx context.Context, c *change) error {
	err := c.undo(ctx)
	rec := c.rec
	rec.Op, rec.Time = "undo", time.Now().Format(time.RFC3339Nano)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("chaos: undo %s of broker %d (fault %d): %w", c.rec.Action, c.rec.Node, c.rec.Fault, err)
		rec.Error = err.Error()
		r.writeLocked(rec)
		return err
	}
	r.writeLocked(rec)
	r.pending = slices.DeleteFunc(r.pending, func(p *change) bool { return p == c })
	return nil
}

// take returns the pending changes matching keep, newest first.
func (r *Registry) take(keep func(Record) bool) []*change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*change
	for i := len(r.pending) - 1; i >= 0; i-- {
		if keep(r.pending[i].rec) {
			out = append(out, r.pending[i])
		}
	}
	return out
}

// Forget drops the pending change with the given Seq without running its undo, and journals
// it as undone: for a change that turned out not to be made (its object already existed and
// belongs to someone else).
func (r *Registry) Forget(seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = slices.DeleteFunc(r.pending, func(c *change) bool {
		if c.rec.Seq != seq {
			return false
		}
		rec := c.rec
		rec.Op, rec.Time = "undo", time.Now().Format(time.RFC3339Nano)
		r.writeLocked(rec)
		return true
	})
}

// Undo undoes the change with the given Seq, if still pending.
func (r *Registry) Undo(ctx context.Context, seq int64) error {
	var errs []error
	for _, c := range r.take(func(rec Record) bool { return rec.Seq == seq }) {
		errs = append(errs, r.undoOne(ctx, c))
	}
	return errors.Join(errs...)
}

// UndoFault undoes every pending change of fault instance id, newest first.
func (r *Registry) UndoFault(ctx context.Context, id int64) error {
	var errs []error
	for _, c := range r.take(func(rec Record) bool { return rec.Fault == id }) {
		errs = append(errs, r.undoOne(ctx, c))
	}
	return errors.Join(errs...)
}

// Heal undoes every pending change, newest first, trying all of them even when some fail.
func (r *Registry) Heal(ctx context.Context) error {
	var errs []error
	for _, c := range r.take(func(Record) bool { return true }) {
		errs = append(errs, r.undoOne(ctx, c))
	}
	return errors.Join(errs...)
}

// Pending returns the changes not undone yet, oldest first.
func (r *Registry) Pending() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, len(r.pending))
	for i, c := range r.pending {
		out[i] = c.rec
	}
	return out
}

// Close closes the journal and returns its first write error.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		if err := r.f.Close(); err != nil && r.err == nil {
			r.err = fmt.Errorf("chaos: journal: %w", err)
		}
		r.f = nil
	}
	return r.err
}
