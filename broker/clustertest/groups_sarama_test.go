package clustertest_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// saramaResumer is a Sarama ConsumerGroupHandler that reads every partition from where the
// group resumes, marking each message and committing synchronously (auto-commit is off) when
// a partition reaches its commit point: stop[p]-1 of partition p, after which it reads no
// further.
type saramaResumer struct {
	t    *testing.T
	stop map[int32]int64
	cs   *consumed

	mu        sync.Mutex
	committed map[int32]time.Time
}

func (h *saramaResumer) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaResumer) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaResumer) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := claim.Partition()
	for m := range claim.Messages() {
		if m.Offset >= h.stop[p] {
			continue
		}
		if want := value(p, m.Offset); string(m.Value) != want {
			h.t.Errorf("partition %d offset %d: got value %q, want %q", p, m.Offset, m.Value, want)
		}
		h.cs.mu.Lock()
		h.cs.offsets[p] = append(h.cs.offsets[p], m.Offset)
		h.cs.mu.Unlock()
		sess.MarkMessage(m, "")
		if m.Offset == h.stop[p]-1 {
			sess.Commit()
			h.mu.Lock()
			if _, ok := h.committed[p]; !ok {
				h.committed[p] = time.Now()
			}
			h.mu.Unlock()
		}
	}
	return nil
}

// startSarama runs a Sarama ConsumerGroup member with h until the returned stop is called.
func startSarama(t *testing.T, c *clustertest.Cluster, group, topic string, h *saramaResumer) (stop func()) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Metadata.RefreshFrequency = time.Second
	var seeds []string
	for _, id := range c.Others() {
		if c.Node(id).Running() {
			seeds = append(seeds, c.Node(id).Addr())
		}
	}
	cg, err := sarama.NewConsumerGroup(seeds, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			cg.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

func newResumer(t *testing.T, stop map[int32]int64) *saramaResumer {
	return &saramaResumer{t: t, stop: stop, cs: newConsumed(), committed: map[int32]time.Time{}}
}

// allCommitted is nil once h committed every one of partitions.
func (h *saramaResumer) allCommitted(partitions int32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.committed); n < int(partitions) {
		return errf("%d of %d partitions committed", n, partitions)
	}
	return nil
}

// TestGroupSaramaResumesAfterCoordinatorKill is TestGroupResumesAfterCoordinatorKill with
// Sarama's ConsumerGroup (manual commits): a member commits a random cut per partition, the
// coordinator is killed, a new Sarama member resumes exactly at the cuts and commits the log
// end at the new coordinator, and the offsets hold after the killed broker restarts.
func TestGroupSaramaResumesAfterCoordinatorKill(t *testing.T) {
	const parts, perPart = 6, 200
	c := clustertest.Start(t, 3, groupOpts...)
	topic, group := "gsarama", "gsarama-"+strconv.Itoa(c.Rand.IntN(1000))
	c.CreateTopic(topic, parts, 3, map[string]string{"min.insync.replicas": "2"})
	produceSpread(t, c, topic, parts, 0, perPart)

	cuts, ends := map[int32]int64{}, map[int32]int64{}
	for p := range int32(parts) {
		cuts[p] = 1 + c.Rand.Int64N(perPart-1)
		ends[p] = perPart
	}
	first := newResumer(t, cuts)
	stopFirst := startSarama(t, c, group, topic, first)
	c.CheckFor(40*time.Second, "commits at the cuts", func() error { return first.allCommitted(parts) })
	c.CheckFor(20*time.Second, "the cuts committed", func() error {
		if got := committedOffsets(t, c, group, topic); !sameOffsets(got, cuts) {
			return errf("committed %v, want %v", got, cuts)
		}
		return nil
	})
	stopFirst()

	coord := coordinator(t, c, group)
	t.Logf("group %s: coordinator %d, committed %v", group, coord, cuts)
	killedAt := time.Now()
	c.Kill(coord)

	second := newResumer(t, ends)
	stopSecond := startSarama(t, c, group, topic, second)
	c.CheckFor(40*time.Second, "commits at the log end after the kill", func() error { return second.allCommitted(parts) })
	var last time.Time
	second.mu.Lock()
	for _, at := range second.committed {
		if at.After(last) {
			last = at
		}
	}
	second.mu.Unlock()
	c.CheckFor(20*time.Second, "the log end committed", func() error {
		if got := committedOffsets(t, c, group, topic); !sameOffsets(got, ends) {
			return errf("committed %v, want %v", got, ends)
		}
		return nil
	})
	stopSecond()
	t.Logf("coordinator %d killed; new coordinator %d; kill → every partition committed again: %s",
		coord, coordinator(t, c, group), last.Sub(killedAt))
	second.cs.mu.Lock()
	for p := range int32(parts) {
		checkResume(t, p, second.cs.offsets[p], cuts[p], perPart)
	}
	second.cs.mu.Unlock()

	c.Restart(coord)
	for p := range int32(parts) {
		c.WaitLeader(topic, p)
	}
	if got := committedOffsets(t, c, group, topic); !sameOffsets(got, ends) {
		t.Fatalf("committed offsets after broker %d restarted %v, want %v", coord, got, ends)
	}
}
