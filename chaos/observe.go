package chaos

import (
	"context"
	"slices"
	"time"

	"github.com/kchaos/kchaos/history"
)

// Observe samples the cluster's partition metadata every interval (default 500ms) until ctx
// ends and writes a history meta event (process history.ProcessObserver) for every partition
// of topics at the first sample and whenever its leader, leader epoch or ISR changes, so
// reports can mark leader changes and ISR size and the checker can judge min.insync claims.
// minISR is the topics' min.insync.replicas (0 when unknown). Failed samples are skipped.
func Observe(ctx context.Context, res Resolver, hw *history.Writer, topics []string, minISR int, interval time.Duration) {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	last := map[string][]PartitionView{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		view, err := res.View(rctx)
		cancel()
		if err == nil {
			for _, name := range topics {
				prev := last[name]
				for _, p := range view.Topics[name] {
					if int(p.Partition) < len(prev) && samePartition(prev[p.Partition], p) {
						continue
					}
					hw.Write(&history.Event{Type: history.Info, F: history.FMeta, Process: history.ProcessObserver,
						Topic: name, Partition: p.Partition, Offset: -1,
						ISR: &history.PartitionState{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas,
							ISR: p.ISR, MinInsyncReplicas: minISR}})
				}
				if ps := view.Topics[name]; len(ps) > 0 {
					last[name] = ps
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

func samePartition(a, b PartitionView) bool {
	return a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && slices.Equal(a.ISR, b.ISR)
}
