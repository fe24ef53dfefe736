package local_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }

func startCluster(t *testing.T) *local.Cluster {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := local.Start(ctx, local.Config{Dir: t.TempDir(), Binary: bin, Metrics: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

func produce(t *testing.T, addrs []string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("l"), kgo.AllowAutoTopicCreation(),
		kgo.RecordRetries(3), kgo.RequestTimeoutOverhead(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// readUpTo reads topic l from the start until it has want records or 20s pass, and returns
// the offset after the last record read.
func readUpTo(t *testing.T, addrs []string, want int64) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("l"), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var next int64
	for next < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { next = r.Offset + 1 })
	}
	return next
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestKillRestartKeepsDataAndPort(t *testing.T) {
	c := startCluster(t)
	n := c.Node(1)
	addr := n.Addr()
	if got := c.Bootstrap(); len(got) != 1 || got[0] != addr {
		t.Fatalf("bootstrap %v, want [%s]", got, addr)
	}
	if n.MetricsAddr() == "" {
		t.Fatal("metrics address unknown")
	}
	produce(t, c.Bootstrap(), 20)
	pid := n.Pid()
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) || n.Running() {
		t.Fatalf("broker pid %d still alive after Kill", pid)
	}
	if err := n.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n.Addr() != addr {
		t.Fatalf("restart moved the broker from %s to %s", addr, n.Addr())
	}
	if got := readUpTo(t, c.Bootstrap(), 20); got != 20 {
		t.Fatalf("after kill -9 and restart the log ends at %d, want 20", got)
	}
}

func TestPauseResumeAndStopLeaveNothing(t *testing.T) {
	c := startCluster(t)
	n := c.Node(1)
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.DefaultProduceTopic("l"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
	cancel()
	if err == nil {
		t.Fatal("a paused broker acknowledged a write")
	}
	if err := n.Resume(); err != nil {
		t.Fatal(err)
	}
	produce(t, c.Bootstrap(), 1)
	pid := n.Pid()
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	// Stopping a paused broker resumes it first, so it still shuts down cleanly.
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("broker pid %d alive after Stop", pid)
	}
}

// TestPlaceGivesEachBrokerItsAddressAndWrapper places each broker of a 3-broker cluster on a
// loopback address of its own under a wrapper command (env, setting a variable): every broker
// listens on PlacedPort of its address, runs with the wrapper's variable, and the cluster
// forms and takes writes.
func TestPlaceGivesEachBrokerItsAddressAndWrapper(t *testing.T) {
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	seed := testkit.Seed(t)
	// A random 127.x.y.0 block keeps the fixed ports clear of other tests' listeners.
	x, y := byte(100+seed%100), byte(seed>>8)
	host := func(id int32) string { return fmt.Sprintf("127.%d.%d.%d", x, y, 10+id) }
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	c, err := local.Start(ctx, local.Config{Brokers: 3, Dir: t.TempDir(), Binary: bin,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Place: func(id int32) (string, []string) {
			return host(id), []string{"env", fmt.Sprintf("KCHAOS_PLACED=%d", id)}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	t.Logf("placed cluster ready in %s", time.Since(start).Round(time.Millisecond))
	for _, n := range c.Nodes {
		if want := net.JoinHostPort(host(n.ID), strconv.Itoa(local.PlacedPort)); n.Addr() != want {
			t.Errorf("broker %d listens on %s, want %s", n.ID, n.Addr(), want)
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", n.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(env), fmt.Sprintf("KCHAOS_PLACED=%d\x00", n.ID)) {
			t.Errorf("broker %d (pid %d) did not run under its wrapper", n.ID, n.Pid())
		}
	}
	pstart := time.Now()
	produce(t, c.Bootstrap(), 3)
	t.Logf("3 writes in %s", time.Since(pstart).Round(time.Millisecond))
}
