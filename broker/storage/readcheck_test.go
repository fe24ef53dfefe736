package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReadChecksBatchesLoadedWithoutCheck damages a batch of a closed segment after a clean
// close — recovery trusts the segment, so only the first read can notice — and checks that a
// read stops before it, a read starting at it is a CorruptError naming its offset, that
// TrustReads (the serve-corrupt bug switch) serves it as is, and that a damaged offset index
// entry makes the segment rebuild.
func TestReadChecksBatchesLoadedWithoutCheck(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := Config{SegmentBytes: 4096, IndexIntervalBytes: 100}
	l := openTest(t, dir, cfg, clk)
	for i := range 40 {
		if _, err := l.AppendAsLeader(valueBatch(t, clk.Now().UnixMilli(), 2, 200, int64(i)), 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segmentName(0)+logSuffix)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	hs := batchesOf(t, b)
	if len(hs) < 4 {
		t.Fatalf("first segment holds %d batches", len(hs))
	}
	// Flip a bit inside the third batch's CRC-covered part.
	pos := hs[0].Size() + hs[1].Size()
	b[pos+40] ^= 0x10
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := hs[2].BaseOffset
	for _, trust := range []bool{false, true} {
		l, err := Open(dir, cfg, Options{Now: clk.Now, TrustReads: trust})
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.Read(0, 1<<20, l.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		got := countBatches(mustBytes(t, res))
		res.Release()
		if trust {
			if got < 3 {
				t.Errorf("TrustReads: read %d batches, want the damaged one served too", got)
			}
		} else if got != 2 {
			t.Errorf("read from 0 returned %d batches; want the 2 before the damaged one", got)
		}
		_, err = l.Read(bad, 1<<20, l.LogEndOffset(), true)
		var ce *CorruptError
		if trust {
			if err != nil {
				t.Errorf("TrustReads: read at the damaged batch: %v", err)
			}
		} else if !errors.As(err, &ce) || ce.Offset != bad || !errors.Is(err, ErrCorrupt) {
			t.Errorf("read at the damaged batch: %v; want a CorruptError at offset %d", err, bad)
		}
		l.Close()
	}
	// A damaged offset index entry is noticed at load: the segment is rebuilt, not trusted.
	idx := filepath.Join(dir, segmentName(0)+indexSuffix)
	ib, err := os.ReadFile(idx)
	if err != nil || len(ib) < 8 {
		t.Fatalf("offset index: %d bytes, %v", len(ib), err)
	}
	ib[7]++ // the first entry's position
	if err := os.WriteFile(idx, ib, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, cfg, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.LogEndOffset() != bad {
		t.Errorf("after a damaged index the rebuilt log ends at %d; want %d, where the damaged batch was", l.LogEndOffset(), bad)
	}
}

func mustBytes(t *testing.T, r *ReadResult) []byte {
	t.Helper()
	b, err := r.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// countBatches counts the batches in b by their headers alone (no CRC check).
func countBatches(b []byte) int {
	n := 0
	for len(b) >= batchHeaderSize {
		h := parseHeader(b)
		if h.Size() > int64(len(b)) {
			break
		}
		b = b[h.Size():]
		n++
	}
	return n
}
