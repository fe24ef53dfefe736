package loadgen

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
)

// TestTransactionsReadCommitted sends in transactions, aborting some on purpose; a
// read_committed consumer and the drain must see every committed record and no aborted one.
func TestTransactionsReadCommitted(t *testing.T) {
	rc := smokeConfig(t, func(rc *workloads.RunConfig) {
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
}
