package testkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records what a helper logs and why it failed, instead of
// failing the test that runs the helper.
type recorder struct {
	testing.TB
	logs     []string
	fatal    string
	failed   bool
	cleanups []func()
}

func (r *recorder) Helper()                 {}
func (r *recorder) Name() string            { return "TestOuter/sub" }
func (r *recorder) Failed() bool            { return r.failed }
func (r *recorder) Cleanup(f func())        { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Logf(f string, a ...any) { r.logs = append(r.logs, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed, r.fatal = true, fmt.Sprintf(f, a...)
	panic(r) // stands in for runtime.Goexit
}

// run calls f with r, recovering the panic Fatalf stands in for, then runs r's cleanups.
func (r *recorder) run(f func()) {
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		for i := len(r.cleanups) - 1; i >= 0; i-- {
			r.cleanups[i]()
		}
	}()
	f()
}

func TestSeedFromEnvironmentReplays(t *testing.T) {
	t.Setenv(SeedEnv, "1234")
	var a, b uint64
	r := &recorder{}
	r.run(func() { a = Rand(r).Uint64(); b = Rand(r).Uint64() })
	if a != b {
		t.Fatalf("two sources seeded from %s=1234 differ: %d, %d", SeedEnv, a, b)
	}
	r.failed = true
	r.run(func() {})
	if !strings.Contains(strings.Join(r.logs, "\n"), "KCHAOS_SEED=1234 go test -run '^TestOuter$'") {
		t.Fatalf("a failed test does not say how to replay it: %q", r.logs)
	}
}

func TestSeedRejectsGarbage(t *testing.T) {
	t.Setenv(SeedEnv, "soon")
	r := &recorder{}
	r.run(func() { Seed(r) })
	if !strings.Contains(r.fatal, `KCHAOS_SEED="soon"`) {
		t.Fatalf("KCHAOS_SEED=soon: %q", r.fatal)
	}
}

func TestCheckFor(t *testing.T) {
	n := 0
	took := CheckFor(t, time.Second, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 || took <= 0 {
		t.Fatalf("condition polled %d times in %s, want 3", n, took)
	}
	r := &recorder{}
	r.run(func() {
		CheckFor(r, 20*time.Millisecond, time.Millisecond, func() error { return errors.New("leader is -1") })
	})
	if !strings.Contains(r.fatal, "not within 20ms: leader is -1") {
		t.Fatalf("a condition that never holds: %q", r.fatal)
	}
}

func TestNeedSkipsOrFails(t *testing.T) {
	t.Run("skip", func(t *testing.T) {
		t.Setenv(RequireEnv, "")
		Need(t, "nothing", nil)
		Need(t, "a unicorn", errors.New("none here"))
		t.Error("Need did not skip without the unicorn")
	})
	t.Setenv(RequireEnv, "1")
	r := &recorder{}
	r.run(func() { Need(r, "a unicorn", errors.New("none here")) })
	if !r.failed || !strings.Contains(r.fatal, "needs a unicorn: none here") {
		t.Fatalf("with %s set: failed %v, %q", RequireEnv, r.failed, r.fatal)
	}
}
