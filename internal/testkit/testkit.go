// Package testkit is what every kchaos test shares: one replayable seed and one way to wait.
//
// Randomized tests take their seed from Seed (or a *rand.Rand from Rand). The seed comes from
// the environment variable KCHAOS_SEED when it is set, else from the clock; it is logged when
// the test starts and again, with the command that replays it, when the test fails:
//
//	rng := testkit.Rand(t)
//	...
//	--- FAIL: TestX
//	    seed 1234 (replay: KCHAOS_SEED=1234 go test -run '^TestX$')
//
// Tests that wait for a condition poll it with CheckFor instead of sleeping a fixed time and
// then asserting.
package testkit

import (
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// SeedEnv is the environment variable that fixes every randomized test's seed.
const SeedEnv = "KCHAOS_SEED"

// Seed returns the test's seed: KCHAOS_SEED when set (a decimal uint64; anything else fails
// the test), else one drawn from the clock. It logs the seed, and on failure how to replay it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s, ok := os.LookupEnv(SeedEnv); ok {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("testkit: %s=%q: want a decimal seed: %v", SeedEnv, s, err)
		}
		seed = v
	}
	t.Logf("seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (replay: %s=%d go test -run '^%s$')", seed, SeedEnv, seed, topName(t.Name()))
		}
	})
	return seed
}

// Rand returns a random source seeded with Seed(t).
func Rand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := Seed(t)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// topName is the top-level test of a (sub)test name, quoted for a -run pattern.
func topName(name string) string {
	for i, r := range name {
		if r == '/' {
			name = name[:i]
			break
		}
	}
	return regexp.QuoteMeta(name)
}

// CheckFor calls f every step until it returns nil and fails the test with f's last error
// when total has passed. It returns how long the condition took to hold.
func CheckFor(t testing.TB, total, step time.Duration, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(total)
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("testkit: not within %s: %v", total, err)
		}
		time.Sleep(step)
	}
}

// RequireEnv is the environment variable that turns Need's skips into failures; .ci/run sets
// it when it runs as root, where every test must run.
const RequireEnv = "KCHAOS_REQUIRE_ALL"

// Need skips the test when err says the machine lacks what it needs (root, network
// namespaces, an sshd), naming what and why. With KCHAOS_REQUIRE_ALL set (CI as root) the
// test fails instead, so a suite that needs root cannot pass without running.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("testkit: needs %s: %v (%s is set: this machine must run it)", what, err, RequireEnv)
	}
	t.Skipf("testkit: needs %s: %v", what, err)
}

// ScanDuration returns the duration argument key of a datadriven command ("at=1s"), or def
// when the command has none; a value that does not parse fails the test.
func ScanDuration(t *testing.T, d *datadriven.TestData, key string, def time.Duration) time.Duration {
	t.Helper()
	if !d.HasArg(key) {
		return def
	}
	var s string
	d.ScanArgs(t, key, &s)
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Fatalf(t, "%s=%q: %v", key, s, err)
	}
	return v
}
