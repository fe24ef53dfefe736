package storage

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func segmentCount(l *Log) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segments)
}

func TestRetentionByTime(t *testing.T) {
	clk := newClock()
	cfg := Config{SegmentBytes: 4 << 10, RetentionMs: time.Hour}
	l := openTest(t, t.TempDir(), cfg, clk)
	defer l.Close()
	old := clk.Now().UnixMilli()
	appendN(t, l, 20, 2, 400, old) // several segments of old data
	clk.Add(2 * time.Hour)
	fresh := appendN(t, l, 20, 2, 400, clk.Now().UnixMilli())
	before := segmentCount(l)
	if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if segmentCount(l) >= before {
		t.Fatalf("no segment deleted (%d)", before)
	}
	lso := l.LogStartOffset()
	if lso == 0 || lso > 40 {
		t.Fatalf("LogStartOffset %d", lso)
	}
	// Every fresh batch is still there.
	got := readAll(t, l, 40)
	var want []byte
	for _, b := range fresh {
		want = append(want, b...)
	}
	mustEqual(t, "fresh data", got, want)
	// Old data is either gone or in the segment straddling the boundary.
	for _, h := range batchesOf(t, readAll(t, l, lso)) {
		if h.BaseOffset < 40 && h.MaxTimestamp >= old+1000 {
			t.Fatalf("unexpected batch %+v", h)
		}
	}
	// Nothing older than retention remains in any fully old segment except the active one.
	clk.Add(3 * time.Hour)
	if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if segmentCount(l) != 1 {
		t.Fatalf("%d segments after everything expired", segmentCount(l))
	}
	if l.LogEndOffset() != 80 {
		t.Fatalf("LEO %d", l.LogEndOffset())
	}
}

func TestRetentionByBytes(t *testing.T) {
	clk := newClock()
	cfg := Config{SegmentBytes: 4 << 10, RetentionBytes: 10 << 10, RetentionMs: -1}
	l := openTest(t, t.TempDir(), cfg, clk)
	defer l.Close()
	appendN(t, l, 100, 2, 400, clk.Now().UnixMilli())
	if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	// Like Kafka, a segment goes only if the rest still holds retention.bytes.
	if sz := l.Size(); sz < 10<<10 || sz > 15<<10 {
		t.Fatalf("size %d after retention.bytes=10KiB with 4KiB segments", sz)
	}
	lso := l.LogStartOffset()
	if _, err := l.Read(lso-1, 100, l.LogEndOffset(), true); err == nil {
		t.Fatal("read below log start succeeded")
	}
	if got := batchesOf(t, readAll(t, l, lso)); got[len(got)-1].LastOffset() != 199 {
		t.Fatal("tail lost")
	}
	// IncrementLogStartOffset (DeleteRecords) moves the start and deletes whole segments.
	if err := l.IncrementLogStartOffset(190); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 190 {
		t.Fatalf("LogStartOffset %d", l.LogStartOffset())
	}
}

func TestReadResultOutlivesDeletedSegment(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	l := openTest(t, dir, Config{SegmentBytes: 4 << 10, RetentionBytes: RetentionBytesZero, RetentionMs: -1}, clk)
	defer l.Close()
	bs := appendN(t, l, 30, 2, 400, 1)
	r, err := l.Read(0, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() == 0 || segmentCount(l) != 1 {
		t.Fatalf("retention.bytes=0 kept start %d, %d segments", l.LogStartOffset(), segmentCount(l))
	}
	got, err := r.Bytes()
	if err != nil {
		t.Fatalf("read of a deleted but unreleased segment: %v", err)
	}
	mustEqual(t, "first batch", got[:len(bs[0])], bs[0])
	if m, _ := filepath.Glob(filepath.Join(dir, "*"+deletedSuffix)); len(m) == 0 {
		t.Fatal("no deleted files pending while a read holds them")
	}
	r.Release()
	if m, _ := filepath.Glob(filepath.Join(dir, segmentName(0)+"*")); len(m) != 0 {
		t.Fatalf("files left after release: %v", m)
	}
}

// TestRetentionStopsAtHighWatermark: like Kafka, retention deletes a segment only when all of
// it is below the high watermark, so the log start offset never passes the high watermark;
// with the high watermark at the log end the active segment goes too (a new one is rolled).
func TestRetentionStopsAtHighWatermark(t *testing.T) {
	for _, policy := range []Config{
		{SegmentBytes: 4 << 10, RetentionMs: time.Hour},
		{SegmentBytes: 4 << 10, RetentionMs: -1, RetentionBytes: RetentionBytesZero},
	} {
		t.Run(fmt.Sprintf("retention.ms=%v,retention.bytes=%d", policy.RetentionMs, policy.RetentionBytes), func(t *testing.T) {
			clk := newClock()
			l := openTest(t, t.TempDir(), policy, clk)
			defer l.Close()
			appendN(t, l, 40, 2, 400, clk.Now().UnixMilli())
			clk.Add(2 * time.Hour)
			segs := segmentCount(l)
			if segs < 4 {
				t.Fatalf("only %d segments", segs)
			}
			l.mu.RLock()
			second, third := l.segments[1].base, l.segments[2].base
			l.mu.RUnlock()
			// A high watermark inside the second segment keeps it and everything after.
			if err := l.Maintain(clk.Now(), third-1); err != nil {
				t.Fatal(err)
			}
			if got := l.LogStartOffset(); got != second || segmentCount(l) != segs-1 {
				t.Fatalf("high watermark %d: log start %d with %d segments, want %d with %d", third-1, got, segmentCount(l), second, segs-1)
			}
			if err := l.Maintain(clk.Now(), 0); err != nil {
				t.Fatal(err)
			}
			if got := l.LogStartOffset(); got != second {
				t.Fatalf("high watermark 0 moved the log start to %d", got)
			}
			// Everything committed and expired: the active segment goes as well.
			leo := l.LogEndOffset()
			if err := l.Maintain(clk.Now(), leo); err != nil {
				t.Fatal(err)
			}
			if l.LogStartOffset() != leo || segmentCount(l) != 1 || l.LogEndOffset() != leo {
				t.Fatalf("all expired: log start %d, %d segments, log end %d; want %d, 1, %d", l.LogStartOffset(), segmentCount(l), l.LogEndOffset(), leo, leo)
			}
			info, err := l.AppendAsLeader(valueBatch(t, clk.Now().UnixMilli(), 2, 100, 1), 0, -1)
			if err != nil || info.FirstOffset != leo {
				t.Fatalf("append after deleting every segment: %+v %v, want offset %d", info, err, leo)
			}
		})
	}
}
