package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker"
	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/local"
)

// TestCommittedOffsetsSurviveKill9: offsets committed to a broker process survive kill -9 of
// that process: after a restart on the same data directory the coordinator reloads
// __consumer_offsets and a new member of the group resumes exactly at the committed offset.
func TestCommittedOffsetsSurviveKill9(t *testing.T) {
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := local.Start(ctx, local.Config{Dir: t.TempDir(), Binary: bin, Props: groupProps, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	addr := c.Bootstrap()[0]
	createTopic(t, newClient(t, addr), "survive", 1, nil)
	produceN(t, addr, "survive", 100)
	commitAt(t, addr, "gk", "survive", 60)
	n := c.Node(1)
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	addr = c.Bootstrap()[0]
	if got := firstOffset(t, addr, "gk", "survive"); got != 60 {
		t.Fatalf("after kill -9 and restart the group resumed at %d, want 60", got)
	}
	d := describe(t, adminClient(t, addr), "gk")
	if d.state != "Empty" {
		t.Fatalf("group state after the resumed member left: %s, want Empty", d.state)
	}
}

// TestGroupMetrics: the Prometheus endpoint reports groups by state, committed offsets and
// consumer lag.
func TestGroupMetrics(t *testing.T) {
	b, err := broker.New(broker.Config{NodeID: 1, Listen: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", DataDir: t.TempDir(), Props: groupProps}, broker.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	createTopic(t, newClient(t, b.Addr()), "lagging", 1, nil)
	produceN(t, b.Addr(), "lagging", 100)
	commitAt(t, b.Addr(), "gm", "lagging", 30)
	text := scrapeAll(t, b.MetricsAddr())
	for _, want := range []string{
		`kafka_consumergroup_current_offset{consumergroup="gm",partition="0",topic="lagging"} 30`,
		`kafka_consumergroup_lag{consumergroup="gm",partition="0",topic="lagging"} 70`,
		`kafka_coordinator_group_groupmetadatamanager_numgroups{state="Empty"} 1`,
		`kafka_coordinator_group_groupmetadatamanager_numgroups{state="Stable"} 0`,
		`kafka_coordinator_group_completed_rebalances_total 2`, // the member's join, then its leave
		`kafka_coordinator_group_offset_commits_total 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}
