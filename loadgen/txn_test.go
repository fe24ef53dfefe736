package loadgen

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
)

// TestTransactionsReadCommitted sends in transactions, aborting some on purpose, with each
// driver; a read_committed consumer and the drain must see every committed record and no
// aborted one.
func TestTransactionsReadCommitted(t *testing.T) {
	t.Parallel()
	for _, driver := range txnDrivers {
		t.Run("driver="+driver, func(t *testing.T) { testTransactionsReadCommitted(t, driver) })
	}
}

func testTransactionsReadCommitted(t *testing.T, driver string) {
	rc := smokeConfig(t, func(rc *workloads.RunConfig) {
		rc.Driver = driver
		rc.Producer.Transactional, rc.Producer.Idempotence = true, true
		rc.Producer.TransactionSize, rc.Producer.AbortRatio = 20, 0.3
		rc.Consumer.IsolationLevel = "read_committed"
		rc.Duration = workloads.Duration(2 * time.Second)
	})
	res, path, _ := runWithHistory(t, rc, testBootstrap(t))
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := history.NewReader(f, path)
	txnOf := map[string]int64{}
	outcome := map[int64]string{}
	seen := map[string]bool{}
	var e history.Event
	for {
		err := rd.Next(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case e.F == history.FRun && !e.Run.Transactional:
			t.Error("header does not say transactional")
		case e.F == history.FSend && e.Type == history.Invoke:
			if e.TxnID == 0 {
				t.Fatalf("send %s outside a transaction", e.Value)
			}
			txnOf[e.Value] = e.TxnID
		case e.F == history.FTxn && e.Type == history.OK && e.Txn.Op != "begin":
			outcome[e.TxnID] = e.Txn.Op
		case e.F == history.FPoll:
			for _, r := range e.Records {
				seen[r.Value] = true
			}
		}
	}
	var committed, aborted int
	for v, id := range txnOf {
		switch outcome[id] {
		case "commit":
			committed++
			if !seen[v] {
				t.Errorf("committed record %s (txn %d) never read", v, id)
			}
		case "abort":
			aborted++
			if seen[v] {
				t.Errorf("read_committed consumer read aborted record %s (txn %d)", v, id)
			}
		default:
			t.Errorf("txn %d of %s has no outcome", id, v)
		}
	}
	t.Logf("sent %d: %d committed, %d aborted in %d transactions; drained %d", res.Sent, committed, aborted, len(outcome), res.Drained)
	if aborted == 0 || committed == 0 || res.Drained != int64(committed) {
		t.Fatalf("committed %d aborted %d drained %d", committed, aborted, res.Drained)
	}
	cres, err := checker.CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{checker.AbortedRead, checker.UncommittedRead, checker.Duplicate, checker.Lost} {
		if c := cres.Count(n); c != 0 {
			t.Errorf("checker: %s %d; examples %+v", n, c, cres.Anomalies[n].Examples)
		}
	}
	if g := guarantee(cres, "read-committed"); g.Status != checker.StatusPass {
		t.Errorf("read-committed: %+v", g)
	}
}

// TestTransactionsReadUncommitted is the contrast: read_uncommitted consumers read the
// aborted transactions' records, and the checker counts each as an aborted read without
// failing a guarantee the configuration does not claim.
func TestTransactionsReadUncommitted(t *testing.T) {
	t.Parallel()
	for _, driver := range txnDrivers {
		t.Run("driver="+driver, func(t *testing.T) {
			rc := smokeConfig(t, func(rc *workloads.RunConfig) {
				rc.Driver = driver
				rc.Producer.Transactional, rc.Producer.Idempotence = true, true
				rc.Producer.TransactionSize, rc.Producer.AbortRatio = 20, 0.3
				rc.Duration = workloads.Duration(time.Second)
			})
			_, path, _ := runWithHistory(t, rc, testBootstrap(t))
			cres, err := checker.CheckFile(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("aborted reads %d", cres.Count(checker.AbortedRead))
			if cres.Count(checker.AbortedRead) == 0 {
				t.Fatal("read_uncommitted consumers read no aborted record")
			}
			if g := guarantee(cres, "no-aborted-reads"); g.Claimed || g.Status != checker.StatusNotClaimed {
				t.Errorf("no-aborted-reads: %+v", g)
			}
		})
	}
}
