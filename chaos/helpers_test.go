package chaos

import (
	"errors"
	"testing"
	"time"

	"github.com/kchaos/kchaos/internal/testkit"
)

// until polls f every 10ms until it is true, failing the test with what after limit; it
// returns the time taken.
func until(t *testing.T, what string, limit time.Duration, f func() bool) time.Duration {
	t.Helper()
	return testkit.CheckFor(t, limit, 10*time.Millisecond, func() error {
		if !f() {
			return errors.New(what)
		}
		return nil
	})
}

// processState is the state letter of process pid ('T': stopped), 0 when it is gone.
func processState(t *testing.T, pid int) byte {
	t.Helper()
	pi, err := readProc(pid)
	if err != nil {
		return 0
	}
	return pi.State
}
