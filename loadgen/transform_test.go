package loadgen

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/workloads"
	"github.com/twmb/franz-go/pkg/kfake"
)

// transformConfig is the smoke workload as a consume-transform-produce run with commit mode
// commit.
func transformConfig(t *testing.T, driver, commit string) workloads.RunConfig {
	return smokeConfig(t, func(rc *workloads.RunConfig) {
		rc.Driver = driver
		rc.Duration = workloads.Duration(2 * time.Second)
		rc.Consumer.Mode, rc.Consumer.Commit, rc.Consumer.IsolationLevel = workloads.ModeTransform, commit, "read_committed"
		rc.Producer.Idempotence = true
	})
}

// runTransform runs rc, crashing the transformer mid-run after a poll's outputs were
// acknowledged and before its offsets were committed, and returns the checker's result.
func runTransform(t *testing.T, rc workloads.RunConfig) (*rundir.Result, *checker.Result) {
	t.Helper()
	return runTransformOn(t, rc, testBootstrap(t), 1)
}

// runTransformOn runs rc against bootstrap with the given number of transformer crashes,
// one second apart, and returns the checker's result.
func runTransformOn(t *testing.T, rc workloads.RunConfig, bootstrap []string, crashes int) (*rundir.Result, *checker.Result) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	hw := history.NewWriter(f)
	faults := make(chan ConsumerFault, 1)
	go func() {
		for range crashes {
			time.Sleep(time.Second)
			faults <- ConsumerFault{Consumer: 0, Kind: FaultCrash, For: 200 * time.Millisecond}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, rc, Options{Bootstrap: bootstrap, History: hw, Status: io.Discard, ConsumerFaults: faults,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CatchUpTimeout: 20 * time.Second, DrainTimeout: 20 * time.Second})
	if cerr := hw.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cres, err := checker.CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d acked %d drained %d crashes %d; outputs read %d; errors %v", res.Sent, res.Acked, res.Drained, cres.Stats.Crashes, cres.Stats.OutputsRead, res.Errors)
	if cres.Stats.Crashes != int64(crashes) {
		t.Fatalf("%d crashes, want %d", cres.Stats.Crashes, crashes)
	}
	return res, cres
}

// assertExactlyOnce fails unless the checker found every input transformed exactly once,
// no aborted or uncommitted read, and the exactly-once-processing guarantee held.
func assertExactlyOnce(t *testing.T, cres *checker.Result) {
	t.Helper()
	for _, n := range []string{checker.MissingOutput, checker.DuplicateOutput, checker.AbortedRead, checker.UncommittedRead, checker.Duplicate,
		checker.Lost, checker.ProcessedTwice, checker.CommittedUnprocessed, checker.NonmonotonicPoll} {
		if c := cres.Count(n); c != 0 {
			t.Errorf("%s: %d; examples %+v", n, c, cres.Anomalies[n].Examples)
		}
	}
	if cres.Stats.OutputsRead == 0 || cres.Stats.Untransformed != 0 {
		t.Errorf("%d outputs read, %d inputs never transformed", cres.Stats.OutputsRead, cres.Stats.Untransformed)
	}
	if g := guarantee(cres, "exactly-once-processing"); g.Status != checker.StatusPass {
		t.Errorf("exactly-once-processing: %+v", g)
	}
}

func guarantee(r *checker.Result, name string) checker.Guarantee {
	for _, g := range r.Guarantees {
		if g.Name == name {
			return g
		}
	}
	return checker.Guarantee{}
}

// TestTransformExactlyOnce crashes a transactional transformer between writing a poll's
// outputs and committing: the crashed transaction is aborted when the restarted
// transformer fences it, so every input appears exactly once in the committed output.
func TestTransformExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, driver := range txnDrivers {
		t.Run("driver="+driver, func(t *testing.T) {
			_, cres := runTransform(t, transformConfig(t, driver, workloads.CommitTransactional))
			assertExactlyOnce(t, cres)
			if cres.Stats.OutputsRead == 0 || cres.Stats.Outputs <= cres.Stats.OutputsRead {
				t.Fatalf("%d outputs sent, %d read: the crash did not abandon a transaction with outputs", cres.Stats.Outputs, cres.Stats.OutputsRead)
			}
		})
	}
}

// TestTransformWithoutTransactionsDuplicates is the mutation: the same crash against a
// transformer that commits its offsets after the outputs, outside any transaction, leaves
// the crashed poll's outputs in the output topic and processes its inputs again.
func TestTransformWithoutTransactionsDuplicates(t *testing.T) {
	t.Parallel()
	for _, driver := range txnDrivers {
		t.Run("driver="+driver, func(t *testing.T) {
			_, cres := runTransform(t, transformConfig(t, driver, workloads.CommitAfterProcessing))
			if cres.Count(checker.DuplicateOutput) == 0 {
				t.Fatalf("no duplicate output after a crash between output and commit; anomalies %+v", cres.Anomalies)
			}
			if c := cres.Count(checker.MissingOutput); c != 0 {
				t.Errorf("missing outputs: %d", c)
			}
			if g := guarantee(cres, "exactly-once-processing"); g.Claimed {
				t.Errorf("exactly-once claimed without transactions: %+v", g)
			}
			if g := guarantee(cres, "at-least-once-processing"); g.Status != checker.StatusPass {
				t.Errorf("at-least-once-processing: %+v", g)
			}
		})
	}
}

// TestTransformExactlyOnceRebalance runs two transactional transformers in one group and
// crashes one mid-transaction: the other takes its partitions over, and still every input
// appears exactly once in the committed output. franz-go only: with two Sarama transformers
// the run was flaky (4 of 26 runs) — either transformer 0 held no partition after its crash
// was due, or the crashed member's partition was not taken over before the catch-up went
// idle — a limitation of the Sarama transformer in groups of several members, not yet fixed.
// Sarama's transformer is covered alone, with a crash, by TestTransformExactlyOnce.
func TestTransformExactlyOnceRebalance(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"franz-go"} {
		t.Run("driver="+driver, func(t *testing.T) {
			rc := transformConfig(t, driver, workloads.CommitTransactional)
			rc.ConsumerPerSubscription, rc.Duration = 2, workloads.Duration(3*time.Second)
			_, cres := runTransform(t, rc)
			assertExactlyOnce(t, cres)
		})
	}
}

// TestTransformExactlyOnceCoordinatorMoves runs a transactional transformer on a three-broker
// kfake cluster whose group and transaction coordinators move every 400ms (kfake's
// coordinator rehash: NOT_COORDINATOR until the clients look them up again), with no client
// crash: every input still appears exactly once in the committed output. (kfake's leader
// shuffle is left out: after it franz-go reports "lost records" and re-reads from the start
// even in a plain consumer group, a kfake artefact.) The confluent driver is left out too:
// under a move every 400ms librdkafka's transformer sometimes (1 run of 2) stops making
// progress for over a second without an error — it looks the coordinators up again more
// slowly than they move — and the run ends with inputs not yet transformed (unknown, not a
// violation); it is covered alone, with a crash, by TestTransformExactlyOnce.
func TestTransformExactlyOnceCoordinatorMoves(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"franz-go", "sarama"} {
		t.Run("driver="+driver, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(3))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			stop := make(chan struct{})
			moved := make(chan int)
			go func() {
				n := 0
				defer func() { moved <- n }()
				tick := time.NewTicker(400 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						c.RehashCoordinators()
						n++
					}
				}
			}()
			rc := transformConfig(t, driver, workloads.CommitTransactional)
			rc.Duration = workloads.Duration(3 * time.Second)
			_, cres := runTransformOn(t, rc, c.ListenAddrs(), 0)
			close(stop)
			t.Logf("moves: %d", <-moved)
			assertExactlyOnce(t, cres)
		})
	}
}
