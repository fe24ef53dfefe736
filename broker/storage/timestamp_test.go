package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// tsBatch builds a batch whose records carry the given absolute timestamps.
func tsBatch(t testing.TB, codec int, ts ...int64) []byte {
	recs := make([]testRecord, len(ts))
	for i, v := range ts {
		recs[i] = testRecord{Value: []byte(fmt.Sprint(i)), TSDelta: v - ts[0]}
	}
	return buildBatch(t, ts[0], codec, recs)
}

func lookup(t *testing.T, l *Log, ts int64) (int64, int64) {
	t.Helper()
	got, found, err := l.OffsetForTimestamp(ts)
	if err != nil {
		t.Fatalf("OffsetForTimestamp(%d): %v", ts, err)
	}
	if !found {
		return -1, -1
	}
	return got.Offset, got.Timestamp
}

func TestOffsetForTimestampFindsRecordInsideBatch(t *testing.T) {
	for _, codec := range []int{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		t.Run(fmt.Sprintf("codec=%d", codec), func(t *testing.T) {
			l := openTest(t, t.TempDir(), Config{}, newClock())
			defer l.Close()
			// Offsets 0-19 at 1000, 1010, ..., 1190; offsets 20-22 out of order: 2050, 2000, 2090.
			var ts []int64
			for i := range 20 {
				ts = append(ts, 1000+int64(i)*10)
			}
			if _, err := l.AppendAsLeader(tsBatch(t, codec, ts...), 3, -1); err != nil {
				t.Fatal(err)
			}
			if _, err := l.AppendAsLeader(tsBatch(t, codec, 2050, 2000, 2090), 4, -1); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct{ target, off, ts int64 }{
				{0, 0, 1000}, {1000, 0, 1000}, {1105, 11, 1110}, {1110, 11, 1110}, {1190, 19, 1190},
				{1191, 20, 2050}, {2000, 20, 2050}, {2051, 22, 2090}, {2090, 22, 2090}, {2091, -1, -1},
			} {
				if off, ts := lookup(t, l, c.target); off != c.off || ts != c.ts {
					t.Errorf("timestamp %d: offset %d (ts %d), want %d (ts %d)", c.target, off, ts, c.off, c.ts)
				}
			}
			if got, _, _ := l.OffsetForTimestamp(1105); got.LeaderEpoch != 3 {
				t.Errorf("leader epoch %d, want the batch's 3", got.LeaderEpoch)
			}
			// The log start offset inside a batch hides the records below it.
			if err := l.IncrementLogStartOffset(5); err != nil {
				t.Fatal(err)
			}
			if off, ts := lookup(t, l, 1000); off != 5 || ts != 1050 {
				t.Errorf("after log start 5: offset %d ts %d, want 5 and 1050", off, ts)
			}
		})
	}
}

func TestOffsetForTimestampLogAppendTime(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{}, newClock())
	defer l.Close()
	if _, err := l.AppendAsLeader(tsBatch(t, codecLZ4, 10, 20, 30), 0, 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAsLeader(tsBatch(t, codecNone, 10, 20), 0, 6000); err != nil {
		t.Fatal(err)
	}
	// Every record of a LogAppendTime batch has the batch's time.
	for _, c := range []struct{ target, off, ts int64 }{{25, 0, 5000}, {5000, 0, 5000}, {5001, 3, 6000}, {6001, -1, -1}} {
		if off, ts := lookup(t, l, c.target); off != c.off || ts != c.ts {
			t.Errorf("timestamp %d: offset %d (ts %d), want %d (ts %d)", c.target, off, ts, c.off, c.ts)
		}
	}
	got, found, err := l.MaxTimestamp()
	if err != nil || !found || got.Offset != 3 || got.Timestamp != 6000 {
		t.Fatalf("MaxTimestamp: %+v %v %v, want offset 3 at 6000", got, found, err)
	}
}

// TestOffsetForTimestampMatchesScan: over many segments with sparse indexes and timestamps
// that go back and forth, the lookup equals a scan for the first record at or after the
// target (which is what Kafka's lookup amounts to with the log starting at 0).
func TestOffsetForTimestampMatchesScan(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed: %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	l := openTest(t, t.TempDir(), Config{SegmentBytes: 4 << 10, IndexIntervalBytes: 300}, newClock())
	defer l.Close()
	type rec struct{ off, ts int64 }
	var all []rec
	base := int64(1_000_000)
	for b := 0; b < 120; b++ {
		n := 1 + rng.IntN(8)
		ts := make([]int64, n)
		for i := range ts {
			base += int64(rng.IntN(20))
			ts[i] = base - int64(rng.IntN(40)) // some records older than earlier ones
		}
		codec := []int{codecNone, codecZstd}[rng.IntN(2)]
		info, err := l.AppendAsLeader(tsBatch(t, codec, ts...), 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range ts {
			all = append(all, rec{info.FirstOffset + int64(i), v})
		}
	}
	if segmentCount(l) < 3 {
		t.Fatalf("only %d segments", segmentCount(l))
	}
	for range 500 {
		target := all[0].ts - 50 + rng.Int64N(base-all[0].ts+100)
		want := rec{-1, -1}
		for _, r := range all {
			if r.ts >= target {
				want = r
				break
			}
		}
		if off, ts := lookup(t, l, target); off != want.off || ts != want.ts {
			t.Fatalf("timestamp %d: offset %d (ts %d), scan finds %d (ts %d)", target, off, ts, want.off, want.ts)
		}
	}
	// MaxTimestamp: the first record holding the largest timestamp.
	best := all[0]
	for _, r := range all {
		if r.ts > best.ts {
			best = r
		}
	}
	if got, found, err := l.MaxTimestamp(); err != nil || !found || got.Offset != best.off || got.Timestamp != best.ts {
		t.Fatalf("MaxTimestamp %+v %v %v, want %+v", got, found, err, best)
	}
}

func TestMaxTimestampEmptyLogAndEarliestEpoch(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{}, newClock())
	defer l.Close()
	if _, found, err := l.MaxTimestamp(); found || err != nil {
		t.Fatalf("empty log: found %v, err %v", found, err)
	}
	if off, epoch := l.EarliestOffset(); off != 0 || epoch != -1 {
		t.Fatalf("empty log earliest: %d epoch %d", off, epoch)
	}
	if _, err := l.AppendAsLeader(tsBatch(t, codecNone, 1, 2, 3), 7, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAsLeader(tsBatch(t, codecNone, 4), 9, -1); err != nil {
		t.Fatal(err)
	}
	if off, epoch := l.EarliestOffset(); off != 0 || epoch != 7 {
		t.Fatalf("earliest: %d epoch %d, want 0 epoch 7", off, epoch)
	}
	if err := l.IncrementLogStartOffset(3); err != nil {
		t.Fatal(err)
	}
	if off, epoch := l.EarliestOffset(); off != 3 || epoch != 9 {
		t.Fatalf("earliest after log start 3: %d epoch %d, want 3 epoch 9", off, epoch)
	}
}

// BenchmarkOffsetForTimestamp measures one lookup by time in a log of 1,000 batches of 100
// records (segments of 1 MiB), landing in the middle of a batch.
func BenchmarkOffsetForTimestamp(b *testing.B) {
	for _, codec := range []int{codecNone, codecZstd} {
		b.Run(fmt.Sprintf("codec=%d,batches=1000,records=100", codec), func(b *testing.B) {
			l := openTest(b, b.TempDir(), Config{SegmentBytes: 1 << 20}, newClock())
			defer l.Close()
			ts := make([]int64, 100)
			for i := range 1000 {
				for j := range ts {
					ts[j] = int64(i*100 + j)
				}
				if _, err := l.AppendAsLeader(tsBatch(b, codec, ts...), 0, -1); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				target := int64(i*7919%1000)*100 + 57
				got, found, err := l.OffsetForTimestamp(target)
				if err != nil || !found || got.Offset != target {
					b.Fatalf("lookup %d: %+v %v %v", target, got, found, err)
				}
			}
		})
	}
}
