package chaos_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/storage/faultfs"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/internal/e2e"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startNetnsCluster starts n brokers from the e2e fixture, each in a network namespace on a
// tmpfs data directory of diskSize bytes, with props added to the launcher's defaults,
// observes topics and creates them (3 partitions, RF 3), as kchaos run --chaos-driver netns
// does. It skips (or, under KCHAOS_REQUIRE_ALL, fails) without root and network namespaces.
func startNetnsCluster(t *testing.T, n int, diskSize int64, props map[string]string, topics ...string) *replCluster {
	t.Helper()
	c := e2e.StartCluster(t, n, e2e.Props(props), e2e.Netns(diskSize))
	for _, nd := range c.Nodes() {
		if !strings.HasPrefix(nd.Addr(), c.Fabric().Addr(nd.ID).String()+":") {
			t.Fatalf("broker %d listens on %s, not on its namespace address %s", nd.ID, nd.Addr(), c.Fabric().Addr(nd.ID))
		}
	}
	return observe(t, c, topics)
}

// TestNetnsIsolatedFollowerLeavesAndRejoinsISR runs 3 brokers in namespaces and isolates a
// follower with nftables rules (from peers and clients): it leaves the ISR, and after heal
// it is back.
func TestNetnsIsolatedFollowerLeavesAndRejoinsISR(t *testing.T) {
	nc := startNetnsCluster(t, 3, 64<<20, map[string]string{"replica.lag.time.max.ms": "2000"}, "a")
	v := nc.mustView("a")
	pv := v.Topics["a"][0]
	fl := nc.followerNotController(pv, v.Controller)
	t.Logf("a-0 leader %d replicas %v, controller %d; isolating follower %d", pv.Leader, pv.Replicas, v.Controller, fl)
	until(t, "writes before the fault", 10*time.Second, func() bool {
		return nc.produceRaw(pv.Leader, "a", 0, -1, []string{"pre"}) == nil
	})
	start := time.Now()
	r := nc.Fault(chaos.Fault{Kind: chaos.Isolate, Target: chaos.Target{Sel: chaos.SelBroker, Broker: fl}})
	applied := time.Since(start)
	if tbs, err := chaos.KchaosTables(nc.Fabric().Namespace(fl)); err != nil || len(tbs) != 1 {
		t.Errorf("isolated broker %d's namespace has tables %v (%v), want one", fl, tbs, err)
	}
	if err := chaos.DialLink(nc.Fabric(), chaos.Clients, fl, 500*time.Millisecond); err == nil {
		t.Errorf("a client reached isolated broker %d", fl)
	}
	stopWriting := nc.keepWriting(pv.Leader, "a", 0)
	inISR := func() bool {
		p, ok := nc.partition(pv.Leader, "a", 0)
		return !ok || slices.Contains(p.ISR, fl)
	}
	effect := until(t, "isolated follower leaves the ISR", 15*time.Second, func() bool { return !inISR() }) + applied
	stopWriting()
	healStart := time.Now()
	if err := r.Heal(); err != nil {
		t.Fatal(err)
	}
	undo := time.Since(healStart)
	if tbs, err := chaos.KchaosTables(nc.Fabric().Namespace(fl)); err != nil || len(tbs) != 0 {
		t.Errorf("tables %v (%v) left in broker %d's namespace after heal", tbs, err, fl)
	}
	until(t, "follower back in the ISR", 30*time.Second, inISR)
	healed := time.Since(healStart)
	t.Logf("isolate (netns): rules applied in %s; takes effect (fault start -> ISR shrink seen) %s [replica.lag.time.max.ms 2s]; heal (heal -> ISR back) %s (rules removed in %s)",
		applied.Round(time.Millisecond), effect.Round(time.Millisecond), healed.Round(time.Millisecond), undo.Round(time.Microsecond))
	if effect > 5*time.Second {
		t.Errorf("the isolated follower left the ISR %s after the fault began; want within about replica.lag.time.max.ms (2s)", effect)
	}

	// Process faults act as in the local driver; the restart runs in the broker's namespace
	// on its tmpfs, which kept its data.
	node := nc.Node(fl)
	addr := node.Addr()
	kr := nc.Fault(chaos.Fault{Kind: chaos.Kill, Target: chaos.Target{Sel: chaos.SelBroker, Broker: fl}})
	if node.Running() {
		t.Fatalf("broker %d still running after kill", fl)
	}
	until(t, "killed follower leaves the ISR", 15*time.Second, func() bool { return !inISR() })
	restart := time.Now()
	if err := kr.Heal(); err != nil {
		t.Fatal(err)
	}
	if node.Addr() != addr {
		t.Errorf("restarted broker %d listens on %s, was %s", fl, node.Addr(), addr)
	}
	until(t, "restarted follower back in the ISR", 30*time.Second, inISR)
	t.Logf("kill (netns): restarted follower back in the ISR %s after heal", time.Since(restart).Round(time.Millisecond))
}

// TestNetnsDiskFullStorageErrorThenRecovery runs one broker in a namespace on a 32MiB tmpfs,
// fills the tmpfs: produce answers KAFKA_STORAGE_ERROR (a real ENOSPC), and once the fault
// ends produce succeeds again.
func TestNetnsDiskFullStorageErrorThenRecovery(t *testing.T) {
	nc := startNetnsCluster(t, 1, 32<<20, nil)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "d", 1, 1
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := req.RequestWith(ctx, nc.Admin()); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 4<<10)
	until(t, "writes before the fault", 10*time.Second, func() bool { return nc.produceRaw(1, "d", 0, 1, []string{value}) == nil })
	start := time.Now()
	r := nc.Fault(chaos.Fault{Kind: chaos.DiskFull, Target: chaos.Target{Sel: chaos.SelBroker, Broker: 1}})
	applied := time.Since(start)
	var lastErr error
	effect := until(t, "KAFKA_STORAGE_ERROR", 10*time.Second, func() bool {
		lastErr = nc.produceRaw(1, "d", 0, 1, []string{value})
		return errors.Is(lastErr, kerr.KafkaStorageError)
	}) + applied
	// The broker's log reaches its file through a pipe: give the line a moment.
	until(t, "the broker logs a real ENOSPC", 5*time.Second, func() bool {
		return strings.Contains(nc.Nodes()[0].Log(), "no space left on device")
	})
	if _, err := os.Stat(filepath.Join(nc.Nodes()[0].DataDir, faultfs.ControlFile)); err == nil {
		t.Errorf("the faultfs control file exists: the ENOSPC may not be the tmpfs's")
	}
	healStart := time.Now()
	if err := r.Heal(); err != nil {
		t.Fatal(err)
	}
	until(t, "writes after the fault", 20*time.Second, func() bool {
		lastErr = nc.produceRaw(1, "d", 0, 1, []string{value})
		return lastErr == nil
	})
	healed := time.Since(healStart)
	t.Logf("disk-full (netns tmpfs): filled in %s; takes effect (fault start -> KAFKA_STORAGE_ERROR) %s; heal (heal -> produce ok) %s",
		applied.Round(time.Millisecond), effect.Round(time.Millisecond), healed.Round(time.Millisecond))

	// Lose-unsynced goes through the broker's faultfs journal, which lives on the tmpfs too:
	// the broker is killed, restarted in its namespace, and serves again.
	node := nc.Nodes()[0]
	pid := node.Pid()
	lstart := time.Now()
	nc.Fault(chaos.Fault{Kind: chaos.LoseUnsynced, Target: chaos.Target{Sel: chaos.SelBroker, Broker: 1}})
	if !node.Running() || node.Pid() == pid {
		t.Fatalf("broker 1 after lose-unsynced: running %v, pid %d (was %d)", node.Running(), node.Pid(), pid)
	}
	until(t, "writes after lose-unsynced", 20*time.Second, func() bool {
		lastErr = nc.produceRaw(1, "d", 0, 1, []string{value})
		return lastErr == nil
	})
	t.Logf("lose-unsynced (netns): broker restarted in its namespace and serving %s after the fault began", time.Since(lstart).Round(time.Millisecond))
}

// TestNetnsLeaderIsolatedAcks1Lost is TestClusterLeaderIsolatedAcks1Lost with the same fault
// spec on the netns driver: the leader of a partition is cut from its followers by nftables
// rules while clients still reach it; acks=1 records it acknowledges are lost once a follower
// has taken over and the old leader is killed and healed.
func TestNetnsLeaderIsolatedAcks1Lost(t *testing.T) {
	nc := startNetnsCluster(t, 3, 64<<20, nil, "c")
	nc.leaderIsolatedAcks1Lost()
}

// TestNetnsKillLeaderElectsNewLeader is TestClusterKillLeaderElectsNewLeader on brokers in
// namespaces: a killed leader is replaced, and a producer's unavailability stays short.
func TestNetnsKillLeaderElectsNewLeader(t *testing.T) {
	nc := startNetnsCluster(t, 3, 64<<20, nil, "b")
	nc.killLeaderElectsNewLeader()
}
