package txn

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchaos/kchaos/internal/testkit"
)

// TestScript runs the transaction state machine's scenarios in testdata/script, on one
// transactional id "t". Each command is one request at a time from the start (at=, default
// the previous command's); it prints the error, or the state persisted next (a failed or
// refused request changes nothing). Producer ids are handed out from 1000. Regenerate the
// expected output with -rewrite and review the diff.
//
//	init [timeout=1m] [pid=-1 epoch=-1]          InitProducerId
//	add pid=1000 epoch=0 partitions=(a-0,b-1)    AddPartitionsToTxn
//	end pid=1000 epoch=0 commit=true             EndTxn
//	complete                                     every marker written
//	expire                                       the coordinator's timeout sweep
func TestScript(t *testing.T) {
	datadriven.Walk(t, "testdata/script", func(t *testing.T, path string) {
		var cur *Txn
		var at time.Duration
		g := &ids{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			at = testkit.ScanDuration(t, d, "at", at)
			now := t0.Add(at)
			pid, epoch := int64(-1), int16(-1)
			if d.HasArg("pid") {
				var p, e int
				d.ScanArgs(t, "pid", &p)
				d.ScanArgs(t, "epoch", &e)
				pid, epoch = int64(p), int16(e)
			}
			var next *Txn
			var err *kerr.Error
			var note string
			switch d.Cmd {
			case "init":
				timeout := testkit.ScanDuration(t, d, "timeout", time.Minute)
				var res InitResult
				res, err = Init(cfg, "t", cur, InitRequest{Timeout: timeout, ProducerID: pid, Epoch: epoch}, now, g.newID)
				next = res.Next
				if res.Abort {
					note = "abort the ongoing transaction first (CONCURRENT_TRANSACTIONS to the client)\n"
				}
			case "add":
				var parts []string
				d.ScanArgs(t, "partitions", &parts)
				var tps []TopicPartition
				for _, p := range parts {
					i := strings.LastIndex(p, "-")
					n, perr := strconv.Atoi(p[i+1:])
					if i < 0 || perr != nil {
						d.Fatalf(t, "partition %q: want topic-N", p)
					}
					tps = append(tps, tp(p[:i], int32(n)))
				}
				next, err = AddPartitions(cur, pid, epoch, tps, now)
			case "end":
				var commit bool
				d.ScanArgs(t, "commit", &commit)
				next, err = End(cur, pid, epoch, commit, now)
			case "complete":
				next = cur.Completed(now)
			case "expire":
				if !cur.Expired(now) {
					return "not expired\n"
				}
				next, err = Expire(cur, now, g.newID)
			default:
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			if err != nil {
				return "error: " + err.Message + "\n"
			}
			if next == nil {
				return note + "no change\n"
			}
			cur = next
			return note + describe(cur)
		})
	})
}

// describe prints a transactional id's state.
func describe(t *Txn) string {
	var parts []string
	for _, p := range t.SortedPartitions() {
		parts = append(parts, fmt.Sprintf("%s-%d", p.Topic, p.Partition))
	}
	return fmt.Sprintf("state=%s pid=%d epoch=%d last=%d/%d timeout=%s partitions=%v\n",
		t.State, t.ProducerID, t.Epoch, t.LastProducerID, t.LastEpoch, t.Timeout, parts)
}
