package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// drainProbeWait is how long a probe reads a partition's tail before it gives up (and the
// drain keeps waiting for its consumer).
const drainProbeWait = 2 * time.Second

// tailVisible reports whether offsets [from, to) of topic-partition hold a record a consumer
// at the drain's isolation level would be handed: any data record when reading uncommitted;
// a non-transactional record or one of a transaction committed before to when reading
// committed. A drain whose consumer stopped short of its end offset is done when the rest is
// only control records (transaction markers) or aborted transactions' records, which clients
// never return; otherwise it is waiting on a failover. The probe reads with franz-go,
// whichever client the run drives, keeping control records; it stops at the first visible
// record. An error means the tail could not be read in drainProbeWait.
func tailVisible(ctx context.Context, bootstrap []string, opts []kgo.Opt, topic string, partition int32, from, to int64, readCommitted bool) (bool, error) {
	if from >= to {
		return false, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap...), kgo.ClientID("kchaos-drain-probe"),
		kgo.KeepControlRecords(), kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}})}, opts...)...)
	if err != nil {
		return false, fmt.Errorf("loadgen: drain probe: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, drainProbeWait)
	defer cancel()
	open := map[int64]bool{} // producer ids with records read and no marker yet
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return false, fmt.Errorf("loadgen: drain probe %s/%d: offsets %d to %d not read in %s", topic, partition, from, to, drainProbeWait)
		}
		if err := fs.Err0(); err != nil {
			return false, fmt.Errorf("loadgen: drain probe %s/%d: %w", topic, partition, err)
		}
		for _, rec := range fs.Records() {
			if rec.Offset >= to && !open[rec.ProducerID] {
				// Past the end only the markers of transactions begun before it matter: a
				// transaction's records below the last stable offset may be committed by a
				// marker above it.
				if len(open) == 0 {
					return false, nil
				}
				continue
			}
			switch {
			case rec.Attrs.IsControl():
				if commit := len(rec.Key) >= 4 && binary.BigEndian.Uint16(rec.Key[2:4]) == 1; commit && open[rec.ProducerID] {
					return true, nil
				}
				delete(open, rec.ProducerID)
			case !readCommitted || !rec.Attrs.IsTransactional():
				return true, nil
			default:
				open[rec.ProducerID] = true
			}
			if rec.Offset >= to-1 && len(open) == 0 {
				return false, nil
			}
		}
	}
}
