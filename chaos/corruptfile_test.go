package chaos_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/internal/e2e"
)

// TestCorruptFileDetectedAndReReplicated damages a closed segment of a partition's leader
// while it is down — after a clean stop, so only the first read can find it, and after a kill,
// so recovery finds it — and reads the partition back once the damaged broker leads again
// (preferred leader election every second): every acknowledged value is read exactly once.
// With kchaos.bug.serve-corrupt the damaged batch reaches the consumer, which refuses it.
func TestCorruptFileDetectedAndReReplicated(t *testing.T) {
	for _, c := range []struct {
		name, down, bug, detect string
	}{
		{"stop", "stop", "false", "corrupt stored batch"},
		{"kill", "kill", "false", "truncating corrupt segment tail"},
		{"serve-corrupt", "stop", "true", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := e2e.StartCluster(t, 3, e2e.Set("log.segment.bytes", "2048"), e2e.Set("leader.imbalance.check.interval.seconds", "1"),
				e2e.Set("kchaos.bug.serve-corrupt", c.bug))
			cl.CreateTopic("cf", 1, 3)
			p := producer(t, cl, kgo.RequiredAcks(kgo.AllISRAcks()))
			vals := seqValues(strings.Repeat("v", 80)+"-", 150)
			produceAll(t, p, "cf", vals)
			leader := cl.WaitOnLeader("cf", 0)
			start := time.Now()
			r := cl.Fault(chaos.Fault{Kind: chaos.CorruptFile, Target: chaos.Target{Sel: chaos.SelBroker, Broker: leader},
				Params: map[string]string{"topic": "cf", "partition": "0", "segment": "closed", "down": c.down, "flips": "4"}})
			applied := time.Since(start)
			e2e.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
				if l := cl.WaitOnLeader("cf", 0); l == leader {
					return fmt.Errorf("broker %d still leads after its restart", leader)
				}
				return nil
			})
			back := e2e.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
				if l := cl.WaitOnLeader("cf", 0); l != leader {
					return fmt.Errorf("leader %d, waiting for the damaged broker %d to lead again", l, leader)
				}
				return nil
			})
			got, fetchErrs := readAll(t, cl, "cf", len(vals))
			log := cl.Node(leader).Log()
			for try := 0; try < 3 && ((c.detect != "" && !strings.Contains(log, c.detect)) || (c.bug == "true" && len(fetchErrs) == 0)); try++ {
				// Metadata a moment old may have sent the read to the previous leader.
				got, fetchErrs = readAll(t, cl, "cf", len(vals))
				log = cl.Node(leader).Log()
			}
			t.Logf("corrupt-file down=%s bug=%s on broker %d: stop+damage+restart %v; leads again %v later; read %d of %d values, %d fetch errors (first %v)",
				c.down, c.bug, leader, applied, back, len(got), len(vals), len(fetchErrs), first(fetchErrs))
			cl.Heal(r)
			if c.bug == "true" {
				if len(got) == len(vals) && len(fetchErrs) == 0 {
					t.Fatal("with kchaos.bug.serve-corrupt the consumer read everything without a CRC error")
				}
				return
			}
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, "orrupt") || strings.Contains(l, "runcat") || strings.Contains(l, "recovered") {
					t.Log(l)
				}
			}
			if !strings.Contains(log, c.detect) {
				t.Errorf("broker %d's log does not say %q", leader, c.detect)
			}
			checkExactlyOnce(t, got, vals, "")
			if c.down == "stop" {
				i := strings.Index(log, c.detect)
				t.Logf("detected on first read: %s", strings.SplitN(log[i:], "\n", 2)[0])
			}
		})
	}
}
