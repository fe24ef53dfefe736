package clustertest_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// TestAcksAllSurvivesLeaderKill: RF=3, min.insync.replicas=2, acks=all. A producer writes
// continuously while the partition leader is killed with SIGKILL; afterwards every
// acknowledged record is readable at the offset it was acknowledged at, in order.
func TestAcksAllSurvivesLeaderKill(t *testing.T) {
	c := clustertest.Start(t, 3)
	c.CreateTopic("acks-all", 1, 3, map[string]string{"min.insync.replicas": "2"})
	leader := c.WaitLeader("acks-all", 0)
	p := startProducer(c, "acks-all", 0, kgo.AllISRAcks())
	c.CheckFor(20*time.Second, "acknowledged records", func() error {
		if n := p.count(); n < 200 {
			return errf("%d acks", n)
		}
		return nil
	})
	time.Sleep(time.Duration(c.Rand.IntN(500)) * time.Millisecond)
	killedAt := time.Now()
	c.Kill(leader)
	next := c.WaitLeader("acks-all", 0)
	if next == leader {
		t.Fatalf("leader still %d after its kill", leader)
	}
	before := p.count()
	c.CheckFor(20*time.Second, "acks from the new leader", func() error {
		if n := p.count(); n < before+200 {
			return errf("%d new acks", n-before)
		}
		return nil
	})
	c.Restart(leader)
	acks := p.stop()
	t.Logf("leader %d killed at %s; new leader %d; %d acks; longest gap between acks %s; errors %v",
		leader, killedAt.Format("15:04:05.000"), next, len(acks), maxGap(acks), p.errs)

	log := readAll(t, c, "acks-all", 0, acks[len(acks)-1].offset+1)
	last := int64(-1)
	for _, a := range acks {
		got, ok := log[a.offset]
		if !ok || got != a.value {
			t.Fatalf("acknowledged record %s at offset %d: log has %q (present %v) — an acks=all write was lost", a.value, a.offset, got, ok)
		}
		if a.offset <= last {
			t.Fatalf("acknowledged record %s at offset %d is not after the previous one at %d", a.value, a.offset, last)
		}
		last = a.offset
	}
}
