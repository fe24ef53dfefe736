package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testRecord is one record for buildBatch; a nil Value is a tombstone.
type testRecord struct {
	Key, Value []byte
	TSDelta    int64
}

// buildBatch encodes a v2 batch at base offset 0 with the given records and codec.
func buildBatch(t testing.TB, firstTS int64, codec int, recs []testRecord) []byte {
	t.Helper()
	var plain []byte
	maxTS := firstTS
	for i, r := range recs {
		var body []byte
		body = append(body, 0)
		body = binary.AppendVarint(body, r.TSDelta)
		body = binary.AppendVarint(body, int64(i))
		if r.Key == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(r.Key)))
			body = append(body, r.Key...)
		}
		if r.Value == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(r.Value)))
			body = append(body, r.Value...)
		}
		body = binary.AppendVarint(body, 0)
		plain = binary.AppendVarint(plain, int64(len(body)))
		plain = append(plain, body...)
		maxTS = max(maxTS, firstTS+r.TSDelta)
	}
	records, err := compress(codec, plain, false)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, batchHeaderSize, batchHeaderSize+len(records))
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(batchHeaderSize-logOverhead+len(records)))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(codec))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(len(recs)-1))
	binary.BigEndian.PutUint64(b[offFirstTimestamp:], uint64(firstTS))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTS))
	binary.BigEndian.PutUint64(b[offProducerID:], ^uint64(0))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(len(recs)))
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
	return b
}

// valueBatch builds an uncompressed batch of n records whose values fill size bytes in total,
// derived from seed so content can be checked later.
func valueBatch(t testing.TB, ts int64, n, size int, seed int64) []byte {
	recs := make([]testRecord, n)
	per := max(size/n, 1)
	for i := range recs {
		v := make([]byte, per)
		for j := range v {
			v[j] = byte(seed*31 + int64(i)*7 + int64(j))
		}
		recs[i] = testRecord{Value: v}
	}
	return buildBatch(t, ts, codecNone, recs)
}

// openTest opens a log in a fresh temp dir with a fake clock.
func openTest(t testing.TB, dir string, cfg Config, clk *fakeClock) *Log {
	t.Helper()
	l, err := Open(dir, cfg, Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// readAll reads every batch from offset to the log end with no byte limit.
func readAll(t testing.TB, l *Log, from int64) []byte {
	t.Helper()
	var out []byte
	for off := from; off < l.LogEndOffset(); {
		r, err := l.Read(off, 1<<30, l.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		b, err := r.Bytes()
		r.Release()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
		var last int64
		walkBatches(b, func(h batchHeader, _ []byte) error { last = h.LastOffset(); return nil })
		off = last + 1
	}
	return out
}

// batchesOf splits concatenated batches, checking each CRC.
func batchesOf(t testing.TB, b []byte) []batchHeader {
	t.Helper()
	var hs []batchHeader
	if err := walkBatches(b, func(h batchHeader, bb []byte) error {
		hs = append(hs, h)
		return checkCRC(bb)
	}); err != nil {
		t.Fatalf("batches: %v", err)
	}
	return hs
}

// faultFS wraps OS and fails writes with ENOSPC while full is set, after writing half of
// the bytes so that a torn write must be undone.
type faultFS struct {
	FS
	mu   sync.Mutex
	full bool
}

func (f *faultFS) setFull(v bool) { f.mu.Lock(); f.full = v; f.mu.Unlock() }
func (f *faultFS) isFull() bool   { f.mu.Lock(); defer f.mu.Unlock(); return f.full }

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fs.isFull() {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Write(p)
}

var _ io.Writer = (*faultFile)(nil)

func isENOSPC(err error) bool { return errors.Is(err, syscall.ENOSPC) }

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d bytes (differ)", what, len(got), len(want))
	}
}
