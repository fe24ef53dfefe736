package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaMember is a Sarama ConsumerGroup consuming in the background until closed.
type saramaMember struct {
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
}

// saramaHandler consumes and marks every message, offering each offset to seen when set;
// when block is non-nil, ConsumeClaim waits on it instead, like an application stuck in
// processing that stops polling.
type saramaHandler struct {
	block chan struct{}
	seen  chan int64
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if h.block != nil {
		<-h.block
		return nil
	}
	for m := range claim.Messages() {
		if h.seen != nil {
			select {
			case h.seen <- m.Offset:
			default:
			}
		}
		sess.MarkMessage(m, "")
	}
	return nil
}

func saramaGroupConfig(clientID string, session, rebalance time.Duration) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = clientID
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = session
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = rebalance
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

func startSaramaMember(t *testing.T, addr, groupID, topic string, cfg *sarama.Config, h saramaHandler) *saramaMember {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{addr}, groupID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{cg: cg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(m.close)
	return m
}

func (m *saramaMember) close() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cancel()
	m.cg.Close()
	<-m.done
}

// TestSaramaGroupShareAndReassign: three Sarama members (Version V4_0_0_0) share six
// partitions, each owned by exactly one; after one closes, the other two own all six.
func TestSaramaGroupShareAndReassign(t *testing.T) {
	b := startInProcess(t, t.TempDir(), groupProps)
	createTopic(t, newClient(t, b.Addr()), "sarama-orders", 6, nil)
	admin := adminClient(t, b.Addr())
	var ms []*saramaMember
	for _, id := range []string{"sarama-a", "sarama-b", "sarama-c"} {
		ms = append(ms, startSaramaMember(t, b.Addr(), "sg1", "sarama-orders", saramaGroupConfig(id, 2*time.Second, 3*time.Second), saramaHandler{}))
	}
	d := waitGroup(t, admin, "sg1", 20*time.Second, "3 members covering 6 partitions", func(d describedGroup) bool {
		return len(d.members) == 3 && d.exactCover("sarama-orders", 6)
	})
	for id, tps := range d.members {
		if len(tps) != 2 {
			t.Errorf("member %s owns %v, want 2 partitions", id, tps)
		}
	}
	ms[0].close()
	waitGroup(t, admin, "sg1", 20*time.Second, "2 members covering 6 partitions after a leave", func(d describedGroup) bool {
		return len(d.members) == 2 && d.exactCover("sarama-orders", 6)
	})
}

// TestSaramaStuckMemberRemovedAfterRebalanceTimeout: a member whose handler stops returning
// (it stops polling) cannot rejoin when a rebalance starts; with a session timeout longer than
// the rebalance timeout, the coordinator removes it when the rebalance timeout passes and the
// others take its partitions.
func TestSaramaStuckMemberRemovedAfterRebalanceTimeout(t *testing.T) {
	b := startInProcess(t, t.TempDir(), groupProps)
	createTopic(t, newClient(t, b.Addr()), "sarama-stuck", 6, nil)
	admin := adminClient(t, b.Addr())
	const rebalance = time.Second
	release := make(chan struct{})
	startSaramaMember(t, b.Addr(), "sg2", "sarama-stuck", saramaGroupConfig("healthy-1", 10*time.Second, rebalance), saramaHandler{})
	stuck := startSaramaMember(t, b.Addr(), "sg2", "sarama-stuck", saramaGroupConfig("stuck", 10*time.Second, rebalance), saramaHandler{block: release})
	defer func() {
		close(release)
		stuck.close()
	}()
	waitGroup(t, admin, "sg2", 20*time.Second, "2 members covering 6 partitions", func(d describedGroup) bool {
		return len(d.members) == 2 && d.exactCover("sarama-stuck", 6)
	})
	start := time.Now()
	startSaramaMember(t, b.Addr(), "sg2", "sarama-stuck", saramaGroupConfig("healthy-2", 10*time.Second, rebalance), saramaHandler{})
	d := waitGroup(t, admin, "sg2", 20*time.Second, "the stuck member removed and the healthy two covering 6 partitions", func(d describedGroup) bool {
		if len(d.members) != 2 || !d.exactCover("sarama-stuck", 6) {
			return false
		}
		for _, c := range d.clients {
			if c == "stuck" {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	t.Logf("stuck member removed after %v (rebalance timeout %v); members %v", took, rebalance, d.clients)
	if took < rebalance {
		t.Errorf("stuck member removed after %v, before the %v rebalance timeout", took, rebalance)
	}
}

// TestSaramaCommittedOffsetsResume: a Sarama member marks every message it consumes; after
// it closes, the group's committed offset is the log end, and a new Sarama member resumes
// there: it receives only records produced afterwards, starting exactly at the commit.
func TestSaramaCommittedOffsetsResume(t *testing.T) {
	b := startInProcess(t, t.TempDir(), groupProps)
	createTopic(t, newClient(t, b.Addr()), "sarama-resume", 1, nil)
	produceN(t, b.Addr(), "sarama-resume", 40)
	admin := adminClient(t, b.Addr())
	m := startSaramaMember(t, b.Addr(), "sg3", "sarama-resume", saramaGroupConfig("first", 2*time.Second, 3*time.Second), saramaHandler{})
	deadline := time.Now().Add(20 * time.Second)
	for fetchCommitted(t, admin, "sg3", "sarama-resume", 0) != 40 {
		if time.Now().After(deadline) {
			t.Fatalf("Sarama committed %d, want 40", fetchCommitted(t, admin, "sg3", "sarama-resume", 0))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.close()
	produceN(t, b.Addr(), "sarama-resume", 5)
	first := make(chan int64, 1)
	startSaramaMember(t, b.Addr(), "sg3", "sarama-resume", saramaGroupConfig("second", 2*time.Second, 3*time.Second), saramaHandler{seen: first})
	select {
	case got := <-first:
		if got != 40 {
			t.Fatalf("the restarted Sarama member resumed at %d, want 40", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the restarted Sarama member consumed nothing")
	}
}
