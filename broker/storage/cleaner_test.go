package storage

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// cleanerLog is a compacted log whose every Maintain rolls the active segment first
// (segment.ms of a minute, the clock moved two), so the whole log is cleanable.
type cleanerLog struct {
	t   *testing.T
	l   *Log
	clk *fakeClock
}

func newCleanerLog(t *testing.T, expiration time.Duration) *cleanerLog {
	clk := newClock()
	cfg := Config{CleanupPolicy: "compact", SegmentMs: time.Minute, DeleteRetentionMs: time.Hour}
	l, err := Open(t.TempDir(), cfg, Options{Now: clk.Now, ProducerIDExpiration: expiration})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &cleanerLog{t: t, l: l, clk: clk}
}

// kvBatch builds a batch of "key=value" records ("key=" with nothing after is a tombstone)
// from producer pid (-1: none) with the given epoch, base sequence and transactional flag.
func kvBatch(t testing.TB, ts, pid int64, epoch int16, seq int32, txn bool, kvs ...string) []byte {
	recs := make([]testRecord, len(kvs))
	for i, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		recs[i].Key = []byte(k)
		if v != "" {
			recs[i].Value = []byte(v)
		}
	}
	b := buildBatch(t, ts, codecNone, recs)
	if pid >= 0 {
		b = withProducer(b, pid, epoch, seq, txn)
	}
	return b
}

func (c *cleanerLog) append(b []byte) {
	c.t.Helper()
	if _, err := c.l.AppendAsLeader(b, 0, -1); err != nil {
		c.t.Fatal(err)
	}
}

// clean rolls the active segment and runs maintenance (compaction) after d more time.
func (c *cleanerLog) clean(d time.Duration) {
	c.t.Helper()
	c.clk.Add(d + 2*time.Minute)
	if err := c.l.Maintain(c.clk.Now(), c.l.LogEndOffset()); err != nil {
		c.t.Fatal(err)
	}
}

// dump describes every batch: "base-last" then "pN" for a producer, "commit"/"abort" for a
// marker, "empty" for a batch without records, "h" when a delete horizon is set, and the
// records as key=value (key= for a tombstone).
func dump(t *testing.T, l *Log) string {
	t.Helper()
	var lines []string
	walkBatches(readAll(t, l, l.LogStartOffset()), func(h batchHeader, b []byte) error {
		if err := checkCRC(b); err != nil {
			t.Fatal(err)
		}
		f := []string{fmt.Sprintf("%d-%d", h.BaseOffset, h.LastOffset())}
		if h.ProducerID >= 0 {
			f = append(f, fmt.Sprintf("p%d", h.ProducerID))
		}
		if h.Attributes&attrDeleteHorizon != 0 {
			f = append(f, "h")
		}
		if h.NumRecords == 0 {
			f = append(f, "empty")
		}
		control := h.Attributes&attrControl != 0
		if err := walkBatchRecords(&h, b, func(r *rawRecord) bool {
			switch {
			case control && r.Key[3] == 1:
				f = append(f, "commit")
			case control:
				f = append(f, "abort")
			case r.Tombstone:
				f = append(f, string(r.Key)+"=")
			default:
				f = append(f, string(r.Key)+"="+recordValue(t, r.Raw))
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Join(f, " "))
		return nil
	})
	return strings.Join(lines, "\n")
}

func (c *cleanerLog) expect(what, want string) {
	c.t.Helper()
	if got := dump(c.t, c.l); got != strings.TrimSpace(want) {
		c.t.Fatalf("%s:\n%s\nwant:\n%s", what, got, strings.TrimSpace(want))
	}
}

// TestCleanerKeepsActiveProducersLastBatch: a live idempotent producer's last batch stays,
// emptied, after newer values replaced its records, so a replica rebuilt from the cleaned log
// still knows the producer's sequence (Kafka's LogCleaner RETAIN_EMPTY).
func TestCleanerKeepsActiveProducersLastBatch(t *testing.T) {
	c := newCleanerLog(t, 24*time.Hour)
	ts := c.clk.Now().UnixMilli()
	c.append(kvBatch(t, ts, 7, 0, 0, false, "a=1"))
	c.append(kvBatch(t, ts, 7, 0, 1, false, "b=1"))
	c.append(kvBatch(t, ts, -1, 0, 0, false, "a=2", "b=2"))
	c.append(kvBatch(t, ts, -1, 0, 0, false, "c=1"))
	c.clean(0)
	c.expect("after cleaning", `
1-1 p7 empty
2-3 a=2 b=2
4-4 c=1`)
	// A follower replicating the cleaned log learns producer 7's last sequence.
	f := openTest(t, t.TempDir(), Config{}, newClock())
	defer f.Close()
	if _, err := f.AppendAsFollower(readAll(t, c.l, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AppendAsLeader(kvBatch(t, ts, 7, 0, 2, false, "d=1"), 0, -1); err != nil {
		t.Fatalf("next sequence of producer 7 on the rebuilt replica: %v", err)
	}
	if _, err := f.AppendAsLeader(kvBatch(t, ts, 7, 0, 2, false, "d=1"), 0, -1); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// Once the producer expires its batch goes like any other.
	c.clk.Add(25 * time.Hour)
	c.append(kvBatch(t, ts, -1, 0, 0, false, "c=2"))
	c.clean(0)
	c.expect("after the producer expired", `
2-3 a=2 b=2
5-5 c=2`)
}

// TestCleanerTransactions: aborted records go at once (and do not hide older values of their
// keys); a marker stays while a batch of its transaction is left, gets a delete horizon in the
// first pass that finds none, and goes once delete.retention.ms has passed; tombstones get a
// horizon when first kept and go after it.
func TestCleanerTransactions(t *testing.T) {
	c := newCleanerLog(t, time.Minute) // producers expire before each pass
	ts := c.clk.Now().UnixMilli()
	c.append(kvBatch(t, ts, -1, 0, 0, false, "x=old", "t=1"))
	c.append(kvBatch(t, ts, 5, 0, 0, true, "x=aborted"))
	c.append(markerBatch(t, ts, 5, 0, false, 0))
	c.append(kvBatch(t, ts, 6, 0, 0, true, "z=committed"))
	c.append(markerBatch(t, ts, 6, 0, true, 0))
	c.append(kvBatch(t, ts, -1, 0, 0, false, "t=", "y=1"))
	c.clean(0)
	c.expect("first pass", `
0-1 x=old
3-3 p5 abort
4-4 p6 z=committed
5-5 p6 commit
6-7 h t= y=1`)
	if got := c.l.LastStableOffset(c.l.LogEndOffset()); got != c.l.LogEndOffset() {
		t.Fatalf("LSO %d after cleaning, want the log end", got)
	}
	c.append(kvBatch(t, ts, -1, 0, 0, false, "y=2"))
	c.clean(30 * time.Minute)
	c.expect("second pass: the abort marker's transaction is gone", `
0-1 x=old
3-3 p5 h abort
4-4 p6 z=committed
5-5 p6 commit
6-7 h t=
8-8 y=2`)
	c.append(kvBatch(t, ts, -1, 0, 0, false, "z=plain"))
	c.clean(time.Hour)
	c.expect("third pass: past both horizons", `
0-1 x=old
5-5 p6 commit
8-8 y=2
9-9 z=plain`)
	c.append(kvBatch(t, ts, -1, 0, 0, false, "w=1"))
	c.clean(0)
	c.expect("fourth pass: the commit marker's transaction is gone", `
0-1 x=old
5-5 p6 h commit
8-8 y=2
9-9 z=plain
10-10 w=1`)
	c.append(kvBatch(t, ts, -1, 0, 0, false, "w=2"))
	c.clean(time.Hour)
	c.expect("fifth pass", `
0-1 x=old
8-8 y=2
9-9 z=plain
11-11 w=2`)
}

// TestCleanerStopsAtLastStableOffset: an open transaction's segment and everything after it
// stay uncleaned, so its records cannot replace older values before it commits or aborts.
func TestCleanerStopsAtLastStableOffset(t *testing.T) {
	c := newCleanerLog(t, 24*time.Hour)
	ts := c.clk.Now().UnixMilli()
	c.append(kvBatch(t, ts, -1, 0, 0, false, "a=1"))
	c.append(kvBatch(t, ts, -1, 0, 0, false, "a=2"))
	c.clean(0) // segment [0,2) closes
	c.append(kvBatch(t, ts, 9, 0, 0, true, "a=open"))
	c.append(kvBatch(t, ts, -1, 0, 0, false, "a=3"))
	c.clean(0) // segment [2,4) holds the open transaction
	c.append(kvBatch(t, ts, -1, 0, 0, false, "b=1"))
	c.clean(0)
	c.expect("open transaction at 2", `
1-1 a=2
2-2 p9 a=open
3-3 a=3
4-4 b=1`)
	c.append(markerBatch(t, ts, 9, 0, false, 0))
	c.append(kvBatch(t, ts, -1, 0, 0, false, "b=2"))
	c.clean(0)
	c.expect("aborted", `
2-2 p9 empty
3-3 a=3
5-5 p9 abort
6-6 b=2`)
}

// TestCleanerEmptyMarkerReplicates: a producer's last marker (an abort written with a bumped
// epoch) stays as an empty control batch once its records may go, and a replica copying the
// cleaned log ignores it, as Kafka's producer state does.
func TestCleanerEmptyMarkerReplicates(t *testing.T) {
	c := newCleanerLog(t, 24*time.Hour)
	ts := c.clk.Now().UnixMilli()
	c.append(kvBatch(t, ts, 4, 0, 0, true, "k=1"))
	c.append(markerBatch(t, ts, 4, 1, false, 0))
	c.append(kvBatch(t, ts, -1, 0, 0, false, "k=2"))
	c.clean(0)
	c.append(kvBatch(t, ts, -1, 0, 0, false, "k=3"))
	c.clean(0)
	c.append(kvBatch(t, ts, -1, 0, 0, false, "k=4"))
	c.clean(2 * time.Hour)
	c.expect("marker emptied", `
1-1 p4 empty
4-4 k=4`)
	f := openTest(t, t.TempDir(), Config{}, newClock())
	defer f.Close()
	if _, err := f.AppendAsFollower(readAll(t, c.l, c.l.LogStartOffset())); err != nil {
		t.Fatalf("replicating the cleaned log: %v", err)
	}
	if got := f.LastStableOffset(f.LogEndOffset()); got != f.LogEndOffset() {
		t.Fatalf("replica LSO %d, want %d (no open transaction)", got, f.LogEndOffset())
	}
}
