package loadgen

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kchaos/kchaos/history"
)

// drainIdle ends a drain that makes no progress for this long although some partition has
// not reached its end offset: what is left may be control records a client never returns
// (the last transaction markers of each producer).
const drainIdle = 3 * time.Second

// drainTailMarkers is how many offsets below its end a partition may stop at and still count
// as read to its end but for control records (16); further behind, the drain is waiting on a
// failover (a leader that found a corrupt batch hands the partition over, the new leader
// needs the client's next metadata refresh) and gives up only after drainStuck (15s).
const (
	drainTailMarkers = 16
	drainStuck       = 15 * time.Second
)

// drainSettle is how long a drain that reached every end offset waits for them to stop
// moving before it ends.
const drainSettle = time.Second

// drain reads every partition of every topic from the start to its end offset with a fresh
// consumer (no group), recording its polls as process proc, so the checker can tell a lost
// record from one no consumer got to. It returns the number of distinct records of this
// run it read (inputs and transform outputs alike: their headers name different processes).
func (r *runner) drain(ctx context.Context, drv Driver, topics []string, proc int) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.DrainTimeout)
	defer cancel()
	readCommitted := r.cfg.Consumer.IsolationLevel == "read_committed"
	seen := map[[2]uint64]struct{}{}
	for _, topic := range topics {
		end, err := drv.EndOffsets(ctx, topic, readCommitted)
		if err != nil {
			return int64(len(seen)), fmt.Errorf("loadgen: drain %s: %w", topic, err)
		}
		parts := make([]int32, 0, len(end))
		for p := range end {
			parts = append(parts, p)
		}
		slices.Sort(parts)
		c, err := drv.NewConsumer(ConsumerSettings{Bootstrap: r.opts.Bootstrap, Client: r.opts.Client, ClientID: "kchaos-drain", Topic: topic,
			Partitions: parts, FromStart: true, ReadCommitted: readCommitted})
		if err != nil {
			return int64(len(seen)), fmt.Errorf("loadgen: drain %s: %w", topic, err)
		}
		offs := make([]history.PartitionOffset, len(parts))
		for i, p := range parts {
			offs[i] = history.PartitionOffset{Partition: p, Offset: 0}
		}
		r.hist(&history.Event{Process: proc, Type: history.OK, F: history.FAssign, Topic: topic, Partition: -1, Offset: -1, Offsets: offs})
		next := map[int32]int64{}
		done := func() bool {
			for p, e := range end {
				if next[p] < e {
					return false
				}
			}
			return true
		}
		lastProgress := time.Now()
		idle := drainIdle
		if readCommitted {
			idle = catchUpIdle
		}
		settled := time.Time{} // when the end offsets were last seen unchanged after reaching them
		stuckFor := func() time.Duration {
			for p, e := range end {
				if e-next[p] > drainTailMarkers {
					return max(idle, drainStuck)
				}
			}
			return idle
		}
		for ctx.Err() == nil && time.Since(lastProgress) < stuckFor() {
			if done() {
				// The end offsets are high watermarks, which keep moving after producers stop
				// while followers catch up (acks=0 and 1 do not wait for them): read on until
				// they have not moved for drainSettle.
				if settled.IsZero() {
					settled = time.Now()
				}
				if time.Since(settled) >= drainSettle {
					break
				}
				time.Sleep(drainSettle / 4)
				more, err := drv.EndOffsets(ctx, topic, readCommitted)
				if err != nil {
					break
				}
				for p, e := range more {
					if e > end[p] {
						end[p], settled, lastProgress = e, time.Time{}, time.Now()
					}
				}
				continue
			}
			polled, err := c.Poll(ctx, 200*time.Millisecond)
			if err != nil {
				break
			}
			if len(polled.Records) == 0 {
				continue
			}
			lastProgress = time.Now()
			recs := make([]history.Record, len(polled.Records))
			for i, f := range polled.Records {
				recs[i] = history.Record{Partition: f.Partition, Offset: f.Offset}
				if f.Offset+1 > next[f.Partition] {
					next[f.Partition] = f.Offset + 1
				}
				if h, v, err := HistoryValue(f.Value); err == nil {
					recs[i].Value = v
					if h.RunID == r.runID {
						seen[[2]uint64{uint64(h.ProducerID), h.Sequence}] = struct{}{}
					}
				}
			}
			r.hist(&history.Event{Process: proc, Type: history.OK, F: history.FPoll, Topic: topic, Partition: -1, Offset: -1, Records: recs})
		}
		c.Close()
		if !done() && !readCommitted {
			r.log.Warn("loadgen: drain stopped before the end offsets", "topic", topic, "end", end, "read_to", next)
		}
	}
	return int64(len(seen)), nil
}
