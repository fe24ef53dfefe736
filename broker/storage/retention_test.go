package storage

import (
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
	if err := l.Maintain(clk.Now()); err != nil {
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
	if err := l.Maintain(clk.Now()); err != nil {
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
	if err := l.Maintain(clk.Now()); err != nil {
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
	if err := l.Maintain(clk.Now()); err != nil {
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
