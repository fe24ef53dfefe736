package broker

import (
	"io"
	"log/slog"
	"testing"
)

// startInProcess starts a lone broker in this process (a cluster of one) on a loopback port
// and waits until it serves requests; it is closed when the test ends. configure, when set,
// runs between New and Start.
func startInProcess(tb testing.TB, cfg Config, configure func(*Broker)) *Broker {
	tb.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	b, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	if configure != nil {
		configure(b)
	}
	if err := b.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	if !b.cl.waitCaughtUp() {
		tb.Fatal("broker stopped before it caught up")
	}
	return b
}

// createTestTopic creates topic name with n partitions through the controller and returns
// this broker's copy of it.
func createTestTopic(tb testing.TB, b *Broker, name string, n int32) *topic {
	tb.Helper()
	if kerrv := b.cl.createTopic(name, n, 1, nil); kerrv != nil {
		tb.Fatalf("create topic %s: %v", name, kerrv)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topics[name]
}
