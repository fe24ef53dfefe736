package faultfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ControlFile is the name of the control file in the data directory.
const ControlFile = ".kchaos-disk-fault"

// CheckInterval is how often, at most, the wrapper rereads the control file: 20ms.
const CheckInterval = 20 * time.Millisecond

// Mode is a disk fault as the control file states it; the zero Mode is no fault.
type Mode struct {
	// Full makes writes, creations and fsyncs fail with ENOSPC.
	Full bool
	// Slow delays each write and fsync; 0 means no delay.
	Slow time.Duration
}

// String returns the control file text of m: "full", "slow=DURATION" or "".
func (m Mode) String() string {
	switch {
	case m.Full:
		return "full"
	case m.Slow > 0:
		return "slow=" + m.Slow.String()
	}
	return ""
}

// ParseMode parses control file text; blank text is no fault.
func ParseMode(s string) (Mode, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Mode{}, nil
	case s == "full":
		return Mode{Full: true}, nil
	case strings.HasPrefix(s, "slow="):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "slow="))
		if err != nil || d < 0 {
			return Mode{}, fmt.Errorf("faultfs: control %q: want slow=DURATION like slow=50ms", s)
		}
		return Mode{Slow: d}, nil
	}
	return Mode{}, fmt.Errorf("faultfs: control %q: want full, slow=DURATION or nothing", s)
}

// SetMode writes m to the control file of the broker whose data directory is dataDir,
// atomically (a temporary file renamed over it), so the broker never reads half a line. The
// zero Mode removes the file.
func SetMode(dataDir string, m Mode) error {
	path := filepath.Join(dataDir, ControlFile)
	if m == (Mode{}) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("faultfs: clear %s: %w", path, err)
		}
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(m.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("faultfs: set %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("faultfs: set %s: %w", path, err)
	}
	return nil
}
