package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/IBM/sarama"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestSendOutcome(t *testing.T) {
	for _, tc := range []struct {
		err     error
		retries int
		name    string
		want    history.Type
	}{
		{kerr.NotEnoughReplicas, 0, "NOT_ENOUGH_REPLICAS", history.Fail},
		{fmt.Errorf("wrapped: %w", kerr.NotEnoughReplicas), 5, "NOT_ENOUGH_REPLICAS", history.Info},
		{kerr.NotEnoughReplicasAfterAppend, 0, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", history.Info},
		{kerr.RequestTimedOut, 0, "REQUEST_TIMED_OUT", history.Info},
		{sarama.ErrNotEnoughReplicas, 0, "NOT_ENOUGH_REPLICAS", history.Fail},
		{sarama.ErrMessageSizeTooLarge, 0, "MESSAGE_TOO_LARGE", history.Fail},
		{kgo.ErrRecordTimeout, 0, "TIMEOUT", history.Info},
		{context.DeadlineExceeded, 0, "TIMEOUT", history.Info},
		{kgo.ErrClientClosed, 0, "CLIENT_CLOSED", history.Info},
		{sarama.ErrOutOfBrokers, 0, "CONNECTION_LOST", history.Info},
		{errors.New("something odd"), 0, "something odd", history.Info},
		// A leader that loses leadership while an acks=all batch waits for replication
		// answers NOT_LEADER_OR_FOLLOWER after the append: not a definite failure.
		{sarama.ErrNotLeaderForPartition, 0, "NOT_LEADER_FOR_PARTITION", history.Info},
		{&net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}, 0, "CONNECTION_LOST", history.Info},
	} {
		if got := ErrorName(tc.err); got != tc.name {
			t.Errorf("ErrorName(%v) = %q, want %q", tc.err, got, tc.name)
		}
		if got := SendOutcome(tc.err, tc.retries); got != tc.want {
			t.Errorf("SendOutcome(%v, retries %d) = %s, want %s", tc.err, tc.retries, got, tc.want)
		}
	}
}

func TestOffsetTrackerCommitsOnlyContiguous(t *testing.T) {
	tr := newOffsetTracker()
	for _, o := range []int64{10, 11, 12, 13} {
		tr.add(0, o)
	}
	tr.add(1, 5)
	tr.complete(0, 11)
	tr.complete(0, 13)
	if got := tr.take(); len(got) != 0 {
		t.Fatalf("committed %v before offset 10 was processed", got)
	}
	tr.complete(0, 10)
	if got := tr.take(); got[0] != 12 || len(got) != 1 {
		t.Fatalf("take = %v, want partition 0 at 12", got)
	}
	tr.complete(0, 12)
	tr.complete(1, 5)
	if got := tr.take(); got[0] != 14 || got[1] != 6 {
		t.Fatalf("take = %v, want {0:14 1:6}", got)
	}
	if got := tr.take(); len(got) != 0 {
		t.Fatalf("second take repeated %v", got)
	}
}

func TestKeyChooser(t *testing.T) {
	load := func(src string) *workloads.RunConfig {
		plan, err := workloads.Parse("k.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return &plan.Configs[0]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	if k := newKeyChooser(load("keyDistributor: NO_KEY\n"), rng).Next(); k != nil {
		t.Errorf("NO_KEY gave %q", k)
	}
	rr := newKeyChooser(load("keys: {distinct: 3, distribution: round-robin}\n"), rng)
	var got []string
	for range 4 {
		got = append(got, string(rr.Next()))
	}
	if fmt.Sprint(got) != "[k0 k1 k2 k0]" {
		t.Errorf("round robin: %v", got)
	}
	z := newKeyChooser(load("keys: {distinct: 100, distribution: zipf, s: 1.5}\n"), rng)
	counts := map[string]int{}
	for range 10000 {
		counts[string(z.Next())]++
	}
	if counts["k0"] < 3*counts["k1"]/2 || counts["k0"] < 2000 || len(counts) > 100 {
		t.Errorf("zipf not skewed: k0 %d k1 %d distinct %d", counts["k0"], counts["k1"], len(counts))
	}
	u := newKeyChooser(load("keys: {distinct: 10}\n"), rng)
	uc := map[string]int{}
	for range 10000 {
		uc[string(u.Next())]++
	}
	if len(uc) != 10 || uc["k0"] < 800 || uc["k0"] > 1200 {
		t.Errorf("uniform: %v", uc)
	}
}
