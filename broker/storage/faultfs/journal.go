package faultfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// JournalFile is the name of the sync journal in the data directory.
const JournalFile = ".kchaos-synced"

// Journal operations.
const (
	opOpen     = "open"     // an existing file opened for writing; Size is durable
	opCreate   = "create"   // a file created (New) or truncated to empty by O_TRUNC
	opSync     = "sync"     // the file was fsynced at Size
	opTruncate = "truncate" // the file was cut to Size
	opRename   = "rename"   // Path became To
	opRemove   = "remove"   // Path was removed
	opSyncDir  = "syncdir"  // directory Path was fsynced
)

// entry is one line of the sync journal.
type entry struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	To   string `json:"to,omitempty"`
	Size int64  `json:"size,omitempty"`
	New  bool   `json:"new,omitempty"`
}

// Dropped says what DropUnsynced removed.
type Dropped struct {
	// Truncated is the number of files cut back to their last fsynced size; Bytes how many
	// bytes that removed.
	Truncated int
	Bytes     int64
	// Removed lists the files created since their directory's last fsync, now deleted.
	Removed []string
}

// durability is what a power loss leaves of one file.
type durability struct {
	size int64
	// new: created since its directory was last fsynced, so its directory entry is not durable.
	new bool
}

// replay turns journal entries into what survives a power loss, by absolute path. Renames
// count as durable once done (the checkpoint files the log renames into place were fsynced
// first), which is gentler than a real power loss between the rename and the directory fsync.
func replay(entries []entry) map[string]*durability {
	st := map[string]*durability{}
	for _, e := range entries {
		switch e.Op {
		case opOpen:
			if st[e.Path] == nil {
				st[e.Path] = &durability{size: e.Size}
			}
		case opCreate:
			st[e.Path] = &durability{new: e.New}
		case opSync:
			if d := st[e.Path]; d != nil {
				d.size = e.Size
			} else {
				st[e.Path] = &durability{size: e.Size}
			}
		case opTruncate:
			if d := st[e.Path]; d != nil {
				d.size = min(d.size, e.Size)
			} else {
				st[e.Path] = &durability{size: e.Size}
			}
		case opRename:
			d := st[e.Path]
			delete(st, e.Path)
			if d == nil {
				delete(st, e.To)
				continue
			}
			d.new = false
			st[e.To] = d
		case opRemove:
			delete(st, e.Path)
		case opSyncDir:
			for p, d := range st {
				if filepath.Dir(p) == e.Path {
					d.new = false
				}
			}
		}
	}
	return st
}

// readJournal reads the sync journal of dataDir. A torn last line (the broker was killed in
// the middle of writing it) is ignored.
func readJournal(dataDir string) ([]entry, error) {
	path := filepath.Join(dataDir, JournalFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("faultfs: sync journal: %w (was the broker started with disk faults enabled?)", err)
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("faultfs: sync journal %s: %w", path, err)
	}
	return out, nil
}

// DropUnsynced simulates a power loss on the data directory of a broker that is no longer
// running: every file the broker wrote in its last lifetime is cut back to the size of its
// last fsync, and files created since their directory's last fsync are deleted. The journal
// is emptied, so a second call changes nothing. Running it while the broker runs corrupts
// the broker's view of its files.
func DropUnsynced(dataDir string) (Dropped, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return Dropped{}, fmt.Errorf("faultfs: %w", err)
	}
	entries, err := readJournal(abs)
	if err != nil {
		return Dropped{}, err
	}
	var out Dropped
	var errs []error
	st := replay(entries)
	paths := make([]string, 0, len(st))
	for p := range st {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		d := st[p]
		if d.new {
			if err := os.Remove(p); err == nil {
				out.Removed = append(out.Removed, p)
			} else if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("faultfs: drop %s: %w", p, err))
			}
			continue
		}
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("faultfs: drop %s: %w", p, err))
			continue
		}
		if fi.Size() > d.size {
			if err := os.Truncate(p, d.size); err != nil {
				errs = append(errs, fmt.Errorf("faultfs: drop %s: %w", p, err))
				continue
			}
			out.Truncated++
			out.Bytes += fi.Size() - d.size
		}
	}
	if err := os.Truncate(filepath.Join(abs, JournalFile), 0); err != nil {
		errs = append(errs, fmt.Errorf("faultfs: empty sync journal: %w", err))
	}
	return out, errors.Join(errs...)
}
