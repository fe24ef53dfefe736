// Package controlfile is how the chaos controller talks to a running broker without a
// connection: one line of text in a file of the broker's data directory, written atomically
// by the controller and reread by the broker at most every CheckInterval. The disk faults
// (broker/storage/faultfs) and clock faults (broker/clock) each have their file.
package controlfile

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// CheckInterval is how often, at most, a Poller rereads its file: 20ms.
const CheckInterval = 20 * time.Millisecond

// Set writes text and a newline to path atomically (a temporary file renamed over it), so
// the broker never reads half a line; empty text removes the file.
func Set(path, text string) error {
	if text == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("controlfile: clear %s: %w", path, err)
		}
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text+"\n"), 0o644); err != nil {
		return fmt.Errorf("controlfile: set %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("controlfile: set %s: %w", path, err)
	}
	return nil
}

// Poller says when a control file is due to be reread. Its zero value is due at once; it is
// safe for concurrent use, and only one caller at a time is told to reread.
type Poller struct {
	last atomic.Int64 // UnixNano of the last reread
}

// Due reports whether CheckInterval has passed since the last reread, and if so claims the
// reread for the caller.
func (p *Poller) Due() bool {
	now := time.Now().UnixNano()
	last := p.last.Load()
	return now-last >= int64(CheckInterval) && p.last.CompareAndSwap(last, now)
}
