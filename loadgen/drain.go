package loadgen

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kchaos/kchaos/history"
)

// drainProbeAfter is how long a drain's consumer may make no progress short of an end offset
// before the drain probes the rest of the partition (tailVisible): what is left may be only
// control records and aborted transactions' records, which clients never return.
const drainProbeAfter = 500 * time.Millisecond

// drainStuck ends a drain whose consumer made no progress for this long although records it
// should be handed remain (a failover the client has not followed, an unreadable partition).
const drainStuck = 15 * time.Second

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
		probed := time.Time{}
		settled := time.Time{} // when the end offsets were last seen unchanged after reaching them
		for ctx.Err() == nil && time.Since(lastProgress) < drainStuck {
			if !done() && time.Since(lastProgress) >= drainProbeAfter && time.Since(probed) >= drainProbeAfter {
				r.skipInvisibleTails(ctx, topic, end, next, readCommitted)
				probed = time.Now()
			}
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
		if !done() {
			r.log.Warn("loadgen: drain stopped before the end offsets", "topic", topic, "end", end, "read_to", next)
		}
	}
	return int64(len(seen)), nil
}

// skipInvisibleTails moves each partition's next offset to its end offset when what lies
// between holds nothing a consumer at this isolation level would be handed (tailVisible). A
// probe that fails leaves the partition as it is: the drain keeps waiting for its consumer.
func (r *runner) skipInvisibleTails(ctx context.Context, topic string, end, next map[int32]int64, readCommitted bool) {
	for p, e := range end {
		if next[p] >= e {
			continue
		}
		visible, err := tailVisible(ctx, r.opts.Bootstrap, r.opts.Client.FranzOpts(), topic, p, next[p], e, readCommitted)
		if err != nil {
			r.log.Debug("loadgen: drain probe", "err", err)
			continue
		}
		if !visible {
			next[p] = e
		}
	}
}
