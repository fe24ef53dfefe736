package chaos

import (
	"context"
	"time"

	"github.com/kchaos/kchaos/history"
)

// Observe samples the cluster's partition metadata every interval (default 500ms) until ctx
// ends and writes a history meta event (process history.ProcessObserver) for every partition
// of topics at every sample, so reports can mark leader changes and ISR size and the checker
// can judge min.insync claims: a sample that repeats the last one still tells the checker the
// ISR stayed that small until then (writing changes only would hide how long it lasted).
// minISR is the topics' min.insync.replicas (0 when unknown). Failed samples are skipped.
func Observe(ctx context.Context, res Resolver, hw *history.Writer, topics []string, minISR int, interval time.Duration) {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		view, err := res.View(rctx)
		cancel()
		if err == nil {
			for _, name := range topics {
				for _, p := range view.Topics[name] {
					hw.Write(&history.Event{Type: history.Info, F: history.FMeta, Process: history.ProcessObserver,
						Topic: name, Partition: p.Partition, Offset: -1,
						ISR: &history.PartitionState{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas,
							ISR: p.ISR, MinInsyncReplicas: minISR}})
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
