package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kchaos/kchaos/internal/testkit"
)

// appendN appends n batches of recs records each (value size vsize) and returns the stored
// bytes of each batch, as AppendAsLeader rewrote them.
func appendN(t testing.TB, l *Log, n, recs, vsize int, ts int64) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		b := valueBatch(t, ts+int64(i), recs, vsize, l.LogEndOffset())
		if _, err := l.AppendAsLeader(b, 3, -1); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, b)
	}
	return out
}

func TestAppendReadRoundTrip(t *testing.T) {
	clk := newClock()
	l := openTest(t, t.TempDir(), Config{}, clk)
	defer l.Close()
	b1 := valueBatch(t, 1000, 3, 300, 1)
	b2 := valueBatch(t, 2000, 2, 200, 2)
	info, err := l.AppendAsLeader(append(append([]byte(nil), b1...), b2...), 5, -1)
	if err != nil {
		t.Fatal(err)
	}
	if info.FirstOffset != 0 || info.LastOffset != 4 || info.Batches != 2 || info.Records != 5 || info.MaxTimestamp != 2000 || info.LogAppendTime != -1 {
		t.Fatalf("info %+v", info)
	}
	info, err = l.AppendAsLeader(valueBatch(t, 3000, 1, 10, 3), 5, 4242)
	if err != nil {
		t.Fatal(err)
	}
	if info.FirstOffset != 5 || info.LogAppendTime != 4242 {
		t.Fatalf("info %+v", info)
	}
	if l.LogEndOffset() != 6 {
		t.Fatalf("LEO %d", l.LogEndOffset())
	}
	all := readAll(t, l, 0)
	hs := batchesOf(t, all)
	if len(hs) != 3 || hs[0].BaseOffset != 0 || hs[1].BaseOffset != 3 || hs[2].BaseOffset != 5 {
		t.Fatalf("batches %+v", hs)
	}
	if hs[0].LeaderEpoch != 5 || hs[2].MaxTimestamp != 4242 || hs[2].Attributes&attrLogAppendTime == 0 {
		t.Fatalf("stamping: %+v", hs)
	}
	// Offset in the middle of a batch returns that whole batch.
	r, err := l.Read(4, 1<<20, 6, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.FirstOffset != 3 {
		t.Fatalf("first offset %d", r.FirstOffset)
	}
	r.Release()
	// maxOffset (high watermark) bound: HW=5 stops before the third batch.
	r, _ = l.Read(0, 1<<20, 5, false)
	b, _ := r.Bytes()
	r.Release()
	if got := batchesOf(t, b); len(got) != 2 {
		t.Fatalf("HW read got %d batches", len(got))
	}
	// Reading at the HW or LEO is empty; beyond LEO is out of range.
	for _, off := range []int64{5, 6} {
		r, err = l.Read(off, 1<<20, 5, false)
		if err != nil || r.Size != 0 {
			t.Fatalf("read %d: %v size %d", off, err, r.Size)
		}
		r.Release()
	}
	if _, err := l.Read(7, 1<<20, 6, false); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond LEO: %v", err)
	}
	if _, err := l.Read(-1, 1<<20, 6, false); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("below start: %v", err)
	}
}

func TestReadMaxBytes(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{IndexIntervalBytes: 1500}, newClock())
	defer l.Close()
	bs := appendN(t, l, 20, 2, 1000, 1)
	size := int64(len(bs[0]))
	leo := l.LogEndOffset()
	for _, tc := range []struct {
		maxBytes int
		minOne   bool
		want     int
	}{
		{int(size) - 1, false, 0},
		{int(size) - 1, true, 1},
		{int(size), false, 1},
		{int(size)*3 + 10, false, 3},
		{int(size) * 7, true, 7},
		{1 << 30, false, 20},
	} {
		r, err := l.Read(0, tc.maxBytes, leo, tc.minOne)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Bytes()
		r.Release()
		if got := len(batchesOf(t, b)); got != tc.want {
			t.Errorf("maxBytes %d minOne %v: %d batches, want %d", tc.maxBytes, tc.minOne, got, tc.want)
		}
		for i := 0; i < tc.want; i++ {
			mustEqual(t, "batch", b[int64(i)*size:int64(i+1)*size], bs[i])
		}
	}
}

func TestRollBySizeAndTimeAndIndexLookup(t *testing.T) {
	rng := testkit.Rand(t)
	clk := newClock()
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 16 << 10, IndexIntervalBytes: 512, SegmentMs: time.Hour}
	l := openTest(t, dir, cfg, clk)
	var want [][]byte
	var bases []int64
	for i := 0; i < 300; i++ {
		n := 1 + rng.IntN(5)
		b := valueBatch(t, clk.Now().UnixMilli(), n, 10+rng.IntN(900), int64(i))
		bases = append(bases, l.LogEndOffset())
		if _, err := l.AppendAsLeader(b, 0, -1); err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
		clk.Add(time.Second)
	}
	l.mu.RLock()
	nseg := len(l.segments)
	l.mu.RUnlock()
	if nseg < 5 {
		t.Fatalf("expected rolls by size, got %d segments", nseg)
	}
	check := func(l *Log) {
		for k := 0; k < 200; k++ {
			i := rng.IntN(len(want))
			last := bases[i] + int64(batchesOf(t, want[i])[0].LastOffsetDelta)
			off := bases[i] + rng.Int64N(last-bases[i]+1)
			r, err := l.Read(off, 1, l.LogEndOffset(), true)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := r.Bytes()
			r.Release()
			mustEqual(t, "batch by index lookup", b, want[i])
			ts := batchesOf(t, want[i])[0].MaxTimestamp
			got, found, err := l.OffsetForTimestamp(ts)
			if err != nil || !found || got.Offset != bases[i] || got.Timestamp != ts {
				t.Fatalf("OffsetForTimestamp(%d) = %+v %v %v, want %d", ts, got, found, err, bases[i])
			}
		}
		if _, found, _ := l.OffsetForTimestamp(clk.Now().UnixMilli() + 1e6); found {
			t.Fatal("timestamp beyond the log found")
		}
	}
	check(l)
	// Roll by time: after segment.ms a new append starts a segment; Maintain rolls too.
	clk.Add(2 * time.Hour)
	before := nseg
	appendN(t, l, 1, 1, 10, clk.Now().UnixMilli())
	l.mu.RLock()
	nseg = len(l.segments)
	l.mu.RUnlock()
	if nseg != before+1 {
		t.Fatalf("roll by time on append: %d -> %d segments", before, nseg)
	}
	clk.Add(2 * time.Hour)
	if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	l.mu.RLock()
	if len(l.segments) != nseg+1 || l.active().size != 0 {
		t.Fatalf("Maintain did not roll by time")
	}
	l.mu.RUnlock()
	want = append(want, readAll(t, l, l.LogEndOffset()-1))
	bases = append(bases, l.LogEndOffset()-1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen cleanly (index files trusted) and check lookups again.
	l = openTest(t, dir, cfg, clk)
	defer l.Close()
	check(l)
}

func TestEndOffsetForEpoch(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{}, newClock())
	defer l.Close()
	for _, e := range []struct {
		epoch int32
		n     int
	}{{1, 3}, {1, 2}, {3, 4}, {6, 1}} {
		for i := 0; i < e.n; i++ {
			if _, err := l.AppendAsLeader(valueBatch(t, 1, 1, 10, 0), e.epoch, -1); err != nil {
				t.Fatal(err)
			}
		}
	}
	// epochs: 1@0, 3@5, 6@9, LEO 10
	for _, tc := range []struct {
		req       int32
		wantEpoch int32
		wantEnd   int64
	}{
		{0, 0, 0}, {1, 1, 5}, {2, 1, 5}, {3, 3, 9}, {4, 3, 9}, {5, 3, 9}, {6, 6, 10}, {7, -1, -1}, {-1, -1, -1},
	} {
		e, end := l.EndOffsetForEpoch(tc.req)
		if e != tc.wantEpoch || end != tc.wantEnd {
			t.Errorf("EndOffsetForEpoch(%d) = (%d,%d), want (%d,%d)", tc.req, e, end, tc.wantEpoch, tc.wantEnd)
		}
	}
	if err := l.TruncateTo(7); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 7 {
		t.Fatalf("LEO after truncate %d", l.LogEndOffset())
	}
	if e, _ := l.LatestEpoch(); e != 3 {
		t.Fatalf("latest epoch after truncate %d", e)
	}
	if e, end := l.EndOffsetForEpoch(3); e != 3 || end != 7 {
		t.Fatalf("after truncate: (%d,%d)", e, end)
	}
	// Follower append learns epochs from batches.
	b := valueBatch(t, 1, 2, 10, 0)
	setBaseOffset(b, 7)
	setLeaderEpoch(b, 8)
	if _, err := l.AppendAsFollower(b); err != nil {
		t.Fatal(err)
	}
	if e, end := l.EndOffsetForEpoch(6); e != 3 || end != 7 {
		t.Fatalf("after follower append: (%d,%d)", e, end)
	}
	if _, err := l.AppendAsFollower(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("follower append below LEO: %v", err)
	}
	dir := l.Dir()
	l.Close()
	l2 := openTest(t, dir, Config{}, newClock())
	defer l2.Close()
	if e, end := l2.EndOffsetForEpoch(3); e != 3 || end != 7 {
		t.Fatalf("epoch cache not persisted: (%d,%d)", e, end)
	}
	if err := l2.TruncateFullyAndStartAt(100); err != nil {
		t.Fatal(err)
	}
	if l2.LogStartOffset() != 100 || l2.LogEndOffset() != 100 {
		t.Fatalf("truncate fully: %d %d", l2.LogStartOffset(), l2.LogEndOffset())
	}
	if _, ok := l2.LatestEpoch(); ok {
		t.Fatal("epoch cache not cleared")
	}
	info, err := l2.AppendAsLeader(valueBatch(t, 1, 1, 1, 0), 9, -1)
	if err != nil || info.FirstOffset != 100 {
		t.Fatalf("append after truncate fully: %+v %v", info, err)
	}
}

func TestTruncateToAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 4 << 10, IndexIntervalBytes: 300}
	l := openTest(t, dir, cfg, newClock())
	bs := appendN(t, l, 50, 2, 400, 1) // offsets 0..99
	if err := l.TruncateTo(41); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 40 {
		t.Fatalf("LEO %d, want 40 (batch containing 41 goes whole)", l.LogEndOffset())
	}
	got := readAll(t, l, 0)
	var want []byte
	for _, b := range bs[:20] {
		want = append(want, b...)
	}
	mustEqual(t, "after truncate", got, want)
	appendN(t, l, 3, 2, 400, 1)
	if l.LogEndOffset() != 46 {
		t.Fatalf("LEO %d", l.LogEndOffset())
	}
	l.Close()
	l = openTest(t, dir, cfg, newClock())
	defer l.Close()
	if l.LogEndOffset() != 46 || len(batchesOf(t, readAll(t, l, 0))) != 23 {
		t.Fatalf("reopen after truncate: LEO %d", l.LogEndOffset())
	}
}

func TestAppendENOSPC(t *testing.T) {
	ffs := &faultFS{FS: OS}
	dir := t.TempDir()
	l, err := Open(dir, Config{}, Options{FS: ffs})
	if err != nil {
		t.Fatal(err)
	}
	want := appendN(t, l, 3, 2, 100, 1)
	ffs.setFull(true)
	_, err = l.AppendAsLeader(valueBatch(t, 1, 2, 100, 9), 0, -1)
	if !errors.Is(err, ErrStorage) || !isENOSPC(err) {
		t.Fatalf("append on full disk: %v", err)
	}
	if l.LogEndOffset() != 6 {
		t.Fatalf("LEO moved on failed append: %d", l.LogEndOffset())
	}
	ffs.setFull(false)
	want = append(want, appendN(t, l, 2, 2, 100, 1)...)
	var all []byte
	for _, b := range want {
		all = append(all, b...)
	}
	mustEqual(t, "after ENOSPC", readAll(t, l, 0), all)
	l.Close()
	l, err = Open(dir, Config{}, Options{FS: ffs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustEqual(t, "after reopen", readAll(t, l, 0), all)
}

func TestConcurrentAppendRead(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{SegmentBytes: 64 << 10, IndexIntervalBytes: 1024}, newClock())
	defer l.Close()
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; i < 500; i++ {
			if _, err := l.AppendAsLeader(valueBatch(t, int64(i), 4, 400, int64(i)), 0, -1); err != nil {
				errc <- err
				return
			}
		}
	}()
	next := int64(0)
	for {
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
		leo := l.LogEndOffset()
		r, err := l.Read(next, 8<<10, leo, true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Bytes()
		r.Release()
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range batchesOf(t, b) {
			if h.BaseOffset != next {
				t.Fatalf("gap: got %d want %d", h.BaseOffset, next)
			}
			next = h.LastOffset() + 1
		}
		if next == 2000 {
			break
		}
		if len(b) == 0 {
			select {
			case <-done:
				if next != l.LogEndOffset() {
					continue
				}
				t.Fatalf("stopped at %d", next)
			default:
			}
		}
	}
	<-done
}

func TestFlushPolicy(t *testing.T) {
	clk := newClock()
	l := openTest(t, t.TempDir(), Config{}, clk)
	appendN(t, l, 3, 2, 10, 1)
	if l.RecoveryPoint() != 0 {
		t.Fatalf("default config fsynced: recovery point %d", l.RecoveryPoint())
	}
	if err := l.Flush(); err != nil || l.RecoveryPoint() != 6 {
		t.Fatalf("Flush: %v, recovery point %d", err, l.RecoveryPoint())
	}
	l.SetConfig(Config{FlushMessages: 1})
	appendN(t, l, 1, 2, 10, 1)
	if l.RecoveryPoint() != 8 {
		t.Fatalf("flush.messages=1: recovery point %d", l.RecoveryPoint())
	}
	l.SetConfig(Config{FlushMs: time.Minute})
	appendN(t, l, 1, 2, 10, 1)
	l.Maintain(clk.Now().Add(30*time.Second), l.LogEndOffset())
	if l.RecoveryPoint() != 8 {
		t.Fatalf("flush.ms flushed early: %d", l.RecoveryPoint())
	}
	l.Maintain(clk.Now().Add(2*time.Minute), l.LogEndOffset())
	if l.RecoveryPoint() != 10 {
		t.Fatalf("flush.ms: recovery point %d", l.RecoveryPoint())
	}
	l.Close()
	if _, err := l.AppendAsLeader(valueBatch(t, 1, 1, 1, 0), 0, -1); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

// TestIsLogDir: a log's directory is recognised from its first segment, before any checkpoint
// (a broker killed right after opening a replica leaves exactly that), and a directory without
// segments or checkpoints is not a log.
func TestIsLogDir(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "t-0")
	l, err := Open(logDir, Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(logDir, recoveryPointFile)); err == nil {
		t.Fatal("a new log already has a recovery-point checkpoint; this test needs one without")
	}
	if !IsLogDir(logDir) {
		t.Error("a new log's directory, segment and no checkpoint, is not recognised")
	}
	l.Close()
	if !IsLogDir(logDir) {
		t.Error("a closed log's directory is not recognised")
	}
	other := filepath.Join(dir, "x-1")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "notes.log"), []byte("x"), 0o644)
	if IsLogDir(other) || IsLogDir(filepath.Join(dir, "missing-0")) {
		t.Error("a directory without segments or checkpoints counts as a log")
	}
}

// TestTruncateAtLogEndDropsAnEpochWithoutRecords: a broker that became leader at epoch 1
// (assigning it at its log end) and lost leadership before appending asks its new leader with
// epoch 1, which the leader never had; the leader answers epoch 0 ending at this log's end.
// Truncating there leaves the records but must drop epoch 1, here and on disk, or every fetch
// reports the same divergence and the follower never appends again.
func TestTruncateAtLogEndDropsAnEpochWithoutRecords(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, Config{}, newClock())
	for range 3 {
		if _, err := l.AppendAsLeader(valueBatch(t, 1, 1, 10, 0), 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AssignEpoch(1); err != nil {
		t.Fatal(err)
	}
	if e, _ := l.LatestEpoch(); e != 1 {
		t.Fatalf("latest epoch after becoming leader: %d, want 1", e)
	}
	if err := l.TruncateTo(3); err != nil {
		t.Fatal(err)
	}
	if e, _ := l.LatestEpoch(); e != 0 || l.LogEndOffset() != 3 {
		t.Fatalf("after truncating at the log end: latest epoch %d, LEO %d; want 0 and 3", e, l.LogEndOffset())
	}
	// The follower's next batch, from the new leader's epoch 2, appends after the records.
	b := valueBatch(t, 1, 1, 10, 0)
	setBaseOffset(b, 3)
	setLeaderEpoch(b, 2)
	if _, err := l.AppendAsFollower(b); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openTest(t, dir, Config{}, newClock())
	defer l.Close()
	if e, end := l.EndOffsetForEpoch(1); e != 0 || end != 3 {
		t.Fatalf("after reopening, EndOffsetForEpoch(1) = (%d,%d), want (0,3): epoch 1 came back", e, end)
	}
}
