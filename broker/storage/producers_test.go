package storage

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

// producerBatch builds an uncompressed batch of n records from producer pid with the given
// epoch and base sequence.
func producerBatch(t testing.TB, ts int64, pid int64, epoch int16, seq int32, n int, txn bool) []byte {
	t.Helper()
	recs := make([]testRecord, n)
	for i := range recs {
		recs[i] = testRecord{Value: []byte{byte(seq), byte(i)}}
	}
	return withProducer(buildBatch(t, ts, codecNone, recs), pid, epoch, seq, txn)
}

// withProducer sets an uncompressed batch's producer id, epoch and base sequence (and the
// transactional bit) and fixes its CRC.
func withProducer(b []byte, pid int64, epoch int16, seq int32, txn bool) []byte {
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	if txn {
		binary.BigEndian.PutUint16(b[offAttributes:], attrTransactional)
	}
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
	return b
}

// markerBatch builds a control batch holding a commit or abort marker.
func markerBatch(t testing.TB, ts int64, pid int64, epoch int16, commit bool, coordEpoch int32) []byte {
	t.Helper()
	typ := []byte{0, 0, 0, 0}
	if commit {
		typ[3] = 1
	}
	val := binary.BigEndian.AppendUint32([]byte{0, 0}, uint32(coordEpoch))
	b := buildBatch(t, ts, codecNone, []testRecord{{Key: typ, Value: val}})
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint16(b[offAttributes:], attrTransactional|attrControl)
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
	return b
}

func TestProducerSequenceChecks(t *testing.T) {
	clk := newClock()
	ts := clk.Now().UnixMilli()
	type step struct {
		name    string
		pid     int64
		epoch   int16
		seq     int32
		n       int
		txn     bool
		wantErr error
		wantDup int64 // original first offset of a duplicate, -1 for a fresh append
	}
	steps := []step{
		{"unknown producer at seq 5", 1, 0, 5, 1, false, ErrUnknownProducerID, -1},
		{"first batch", 1, 0, 0, 3, false, nil, -1},    // offsets 0-2
		{"next batch", 1, 0, 3, 2, false, nil, -1},     // offsets 3-4
		{"retry of first", 1, 0, 0, 3, false, nil, 0},  // duplicate
		{"retry of second", 1, 0, 3, 2, false, nil, 3}, // duplicate
		{"gap", 1, 0, 7, 1, false, ErrOutOfOrderSequence, -1},
		{"overlap not a duplicate", 1, 0, 1, 2, false, ErrOutOfOrderSequence, -1},
		{"new epoch not at 0", 1, 1, 5, 1, false, ErrOutOfOrderSequence, -1},
		{"new epoch at 0", 1, 1, 0, 1, false, nil, -1}, // offset 5
		{"old epoch", 1, 0, 5, 1, false, ErrInvalidProducerEpoch, -1},
		{"old epoch transactional", 1, 0, 5, 1, true, ErrProducerFenced, -1},
		{"other producer independent", 2, 0, 0, 1, false, nil, -1}, // offset 6
		{"continue", 1, 1, 1, 1, false, nil, -1},                   // offset 7
	}
	l := openTest(t, t.TempDir(), Config{}, clk)
	defer l.Close()
	for _, s := range steps {
		ai, err := l.AppendAsLeader(producerBatch(t, ts, s.pid, s.epoch, s.seq, s.n, s.txn), 0, -1)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
		}
		if err != nil {
			continue
		}
		if got := ai.Duplicate; got != (s.wantDup >= 0) {
			t.Fatalf("%s: duplicate %v", s.name, got)
		}
		if s.wantDup >= 0 && ai.FirstOffset != s.wantDup {
			t.Fatalf("%s: duplicate at %d, want original %d", s.name, ai.FirstOffset, s.wantDup)
		}
	}
	if leo := l.LogEndOffset(); leo != 8 {
		t.Fatalf("log end offset %d, want 8 (duplicates and refused batches not written)", leo)
	}
}

func TestProducerSequenceWrapsAtMaxInt32(t *testing.T) {
	clk := newClock()
	ts := clk.Now().UnixMilli()
	l := openTest(t, t.TempDir(), Config{}, clk)
	defer l.Close()
	if _, err := l.AppendAsLeader(producerBatch(t, ts, 9, 0, 0, 1, false), 0, -1); err != nil {
		t.Fatal(err)
	}
	// A follower-replicated batch moves the sequence near the wrap without a leader check.
	near := producerBatch(t, ts, 9, 0, math.MaxInt32-1, 2, false)
	setBaseOffset(near, 1)
	if _, err := l.AppendAsFollower(near); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAsLeader(producerBatch(t, ts, 9, 0, 0, 1, false), 0, -1); err != nil {
		t.Fatalf("sequence 0 after MaxInt32: %v", err)
	}
	ai, err := l.AppendAsLeader(producerBatch(t, ts, 9, 0, math.MaxInt32-1, 2, false), 0, -1)
	if err != nil || !ai.Duplicate || ai.FirstOffset != 1 {
		t.Fatalf("retry across the wrap: %+v %v", ai, err)
	}
}

// dupAt appends a retry of producer 1's batch (epoch 0, seq, n records) and checks it is
// recognised with its original first offset.
func dupAt(t *testing.T, l *Log, ts int64, seq int32, n int, want int64) {
	t.Helper()
	ai, err := l.AppendAsLeader(producerBatch(t, ts, 1, 0, seq, n, false), 0, -1)
	if err != nil || !ai.Duplicate || ai.FirstOffset != want {
		t.Fatalf("retry of seq %d: %+v %v, want duplicate of offset %d", seq, ai, err, want)
	}
}

func TestProducerStateSurvivesReopen(t *testing.T) {
	for _, clean := range []bool{true, false} {
		name := map[bool]string{true: "clean", false: "crash"}[clean]
		t.Run("shutdown="+name, func(t *testing.T) {
			clk := newClock()
			ts := clk.Now().UnixMilli()
			dir := t.TempDir()
			// Small segments so batches span rolls and snapshots.
			cfg := Config{SegmentBytes: 300}
			l := openTest(t, dir, cfg, clk)
			for i := int32(0); i < 10; i++ {
				if _, err := l.AppendAsLeader(producerBatch(t, ts, 1, 0, i*2, 2, false), 0, -1); err != nil {
					t.Fatal(err)
				}
			}
			if clean {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			l2 := openTest(t, dir, cfg, clk)
			defer l2.Close()
			if !clean {
				// The crashed log's files stay open; it is dropped without Close.
				defer l.Close()
			}
			dupAt(t, l2, ts, 18, 2, 18)
			dupAt(t, l2, ts, 10, 2, 10)
			if _, err := l2.AppendAsLeader(producerBatch(t, ts, 1, 0, 21, 1, false), 0, -1); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("gap after reopen: %v", err)
			}
			if _, err := l2.AppendAsLeader(producerBatch(t, ts, 1, 0, 20, 1, false), 0, -1); err != nil {
				t.Fatalf("next sequence after reopen: %v", err)
			}
		})
	}
}

func TestProducerStateFollowsTruncation(t *testing.T) {
	clk := newClock()
	ts := clk.Now().UnixMilli()
	l := openTest(t, t.TempDir(), Config{SegmentBytes: 200}, clk)
	defer l.Close()
	for i := int32(0); i < 6; i++ {
		if _, err := l.AppendAsLeader(producerBatch(t, ts, 1, 0, i, 1, false), 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.TruncateTo(3); err != nil {
		t.Fatal(err)
	}
	// Batches 3..5 are gone: seq 3 is new again, seq 2 is still a duplicate.
	dupAt(t, l, ts, 2, 1, 2)
	if ai, err := l.AppendAsLeader(producerBatch(t, ts, 1, 0, 3, 1, false), 0, -1); err != nil || ai.Duplicate || ai.FirstOffset != 3 {
		t.Fatalf("seq 3 after truncation: %+v %v", ai, err)
	}
	if err := l.TruncateFullyAndStartAt(100); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAsLeader(producerBatch(t, ts, 1, 0, 4, 1, false), 0, -1); !errors.Is(err, ErrUnknownProducerID) {
		t.Fatalf("after full truncation the producer is unknown: %v", err)
	}
}

func TestFollowerBuildsProducerState(t *testing.T) {
	clk := newClock()
	ts := clk.Now().UnixMilli()
	leader := openTest(t, t.TempDir(), Config{}, clk)
	defer leader.Close()
	follower := openTest(t, t.TempDir(), Config{}, clk)
	defer follower.Close()
	for i := int32(0); i < 3; i++ {
		if _, err := leader.AppendAsLeader(producerBatch(t, ts, 7, 2, i*3, 3, false), 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := follower.AppendAsFollower(readAll(t, leader, 0)); err != nil {
		t.Fatal(err)
	}
	ai, err := follower.AppendAsLeader(producerBatch(t, ts, 7, 2, 3, 3, false), 1, -1)
	if err != nil || !ai.Duplicate || ai.FirstOffset != 3 {
		t.Fatalf("new leader on a retry: %+v %v", ai, err)
	}
	if _, err := follower.AppendAsLeader(producerBatch(t, ts, 7, 1, 9, 1, false), 1, -1); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch on the new leader: %v", err)
	}
}

func TestProducerExpiration(t *testing.T) {
	clk := newClock()
	ts := clk.Now().UnixMilli()
	l, err := Open(t.TempDir(), Config{}, Options{Now: clk.Now, ProducerIDExpiration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.AppendAsLeader(producerBatch(t, ts, 1, 0, 0, 1, false), 0, -1); err != nil {
		t.Fatal(err)
	}
	clk.Add(59 * time.Second)
	if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	dupAt(t, l, ts, 0, 1, 0)
	clk.Add(2 * time.Second)
	if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAsLeader(producerBatch(t, ts, 1, 0, 1, 1, false), 0, -1); !errors.Is(err, ErrUnknownProducerID) {
		t.Fatalf("expired producer: %v", err)
	}
}

func TestTransactionsLastStableOffsetAndAbortedIndex(t *testing.T) {
	clk := newClock()
	ts := clk.Now().UnixMilli()
	dir := t.TempDir()
	l := openTest(t, dir, Config{}, clk)
	app := func(b []byte) AppendInfo {
		t.Helper()
		ai, err := l.AppendAsLeader(b, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		return ai
	}
	app(producerBatch(t, ts, 100, 0, 0, 2, false)) // 0-1 plain idempotent
	app(producerBatch(t, ts, 5, 0, 0, 2, true))    // 2-3 txn of 5
	if got := l.LastStableOffset(4); got != 2 {
		t.Fatalf("LSO with an open transaction: %d, want 2", got)
	}
	if _, err := l.AppendAsLeader(producerBatch(t, ts, 5, 0, 2, 1, false), 0, -1); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("non-transactional write inside a transaction: %v", err)
	}
	m := app(markerBatch(t, ts, 5, 0, false, 3)) // 4: abort
	if got := l.LastStableOffset(4); got != 2 {
		t.Fatalf("LSO before the marker is replicated: %d, want 2", got)
	}
	if got := l.LastStableOffset(5); got != 5 {
		t.Fatalf("LSO once the marker is replicated: %d, want 5", got)
	}
	if _, err := l.AppendAsLeader(markerBatch(t, ts, 5, 0, true, 2), 0, -1); !errors.Is(err, ErrCoordinatorFenced) {
		t.Fatalf("marker from an older coordinator: %v", err)
	}
	app(producerBatch(t, ts, 5, 0, 2, 1, true)) // 5: second txn
	app(markerBatch(t, ts, 5, 0, true, 3))      // 6: commit
	want := []AbortedTxn{{ProducerID: 5, FirstOffset: 2, LastOffset: m.FirstOffset}}
	check := func(l *Log, what string) {
		t.Helper()
		got := l.AbortedTxns(0, 10)
		if len(got) != 1 || got[0] != want[0] {
			t.Fatalf("%s: aborted %+v, want %+v", what, got, want)
		}
		if got := l.AbortedTxns(5, 10); len(got) != 0 {
			t.Fatalf("%s: aborted after the transaction: %+v", what, got)
		}
	}
	check(l, "leader")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, dir, Config{}, clk)
	defer l2.Close()
	check(l2, "reopened")
	f := openTest(t, t.TempDir(), Config{}, clk)
	defer f.Close()
	if _, err := f.AppendAsFollower(readAll(t, l2, 0)); err != nil {
		t.Fatal(err)
	}
	check(f, "follower")
	if got := f.LastStableOffset(7); got != 7 {
		t.Fatalf("follower LSO: %d", got)
	}
}

func TestCorruptProducerSnapshotFallsBack(t *testing.T) {
	clk := newClock()
	ts := clk.Now().UnixMilli()
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 300}
	l := openTest(t, dir, cfg, clk)
	for i := int32(0); i < 8; i++ {
		if _, err := l.AppendAsLeader(producerBatch(t, ts, 1, 0, i, 1, false), 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	offs, err := l.snapshotOffsets()
	if err != nil || len(offs) < 2 {
		t.Fatalf("snapshots %v, %v: want several (rolls and close)", offs, err)
	}
	newest := l.snapshotPath(offs[len(offs)-1])
	data, err := readWholeFile(OS, newest)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	if err := writeFileAtomic(OS, newest, data, false); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, dir, cfg, clk)
	defer l2.Close()
	dupAt(t, l2, ts, 7, 1, 7)
	if _, err := l2.AppendAsLeader(producerBatch(t, ts, 1, 0, 8, 1, false), 0, -1); err != nil {
		t.Fatalf("next sequence after falling back to an older snapshot: %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := newProducerState()
	ms := []batchMeta{
		{producerID: 3, epoch: 1, baseSeq: 0, lastDelta: 1, firstOffset: 0, lastOffset: 1, maxTimestamp: 10},
		{producerID: 4, epoch: 0, baseSeq: 0, lastDelta: 0, firstOffset: 2, lastOffset: 2, maxTimestamp: 11, transactional: true},
		{producerID: 4, epoch: 0, firstOffset: 3, lastOffset: 3, maxTimestamp: 12, transactional: true, control: true, coordinatorEpoch: 7},
		{producerID: 5, epoch: 2, baseSeq: 0, lastDelta: 0, firstOffset: 4, lastOffset: 4, maxTimestamp: 13, transactional: true},
	}
	for i := range ms {
		s.update(&ms[i])
	}
	got, err := decodeSnapshot(s.encodeSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := s.infos(), got.infos(); len(a) != 3 || !slices.Equal(a, b) {
		t.Fatalf("producers: %+v after round trip, want %+v", b, a)
	}
	if a := got.abortedBetween(0, 10); len(a) != 1 || a[0] != (AbortedTxn{ProducerID: 4, FirstOffset: 2, LastOffset: 3}) {
		t.Fatalf("aborted after round trip: %+v", a)
	}
	if lso := got.firstUnstableOffset(10); lso != 4 {
		t.Fatalf("LSO after round trip: %d, want 4 (producer 5's open transaction)", lso)
	}
}
