package loadgen

import (
	"testing"
	"time"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
)

// TestProcessStopsAtACrash: a crash that arrives while a poll's records are processed one
// call at a time stops the processing there, as a killed process stops: the records already
// processed count, the others do not, nothing is committed, and the crash waits for the poll
// loop. A batch is one call: a crash during it leaves the whole batch unprocessed.
func TestProcessStopsAtACrash(t *testing.T) {
	recs := make([]history.Record, 100)
	for i := range recs {
		recs[i] = history.Record{Partition: 0, Offset: int64(i)}
	}
	for _, tc := range []struct {
		mode     string
		min, max int64
	}{{workloads.ModeGroup, 1, 99}, {workloads.ModeBatch, 0, 0}} {
		rc := workloads.RunConfig{}
		rc.Consumer.Mode, rc.Consumer.Commit = tc.mode, workloads.CommitAfterProcessing
		rc.Consumer.ProcessingTime = workloads.Duration(time.Millisecond)
		c := &consumerTask{r: &runner{cfg: rc}, faults: make(chan ConsumerFault, 1)}
		go func() { time.Sleep(5 * time.Millisecond); c.faults <- ConsumerFault{Kind: FaultCrash} }()
		if c.process(recs) {
			t.Errorf("%s: processed every record with a crash pending", tc.mode)
		}
		if got := c.r.counts.processed.Load(); got < tc.min || got > tc.max {
			t.Errorf("%s: %d of 100 records (1ms each) processed with a crash 5ms in, want %d to %d", tc.mode, got, tc.min, tc.max)
		}
		if c.pending == nil || c.pending.Kind != FaultCrash {
			t.Errorf("%s: the crash was not left for the poll loop: %+v", tc.mode, c.pending)
		}
	}
}
