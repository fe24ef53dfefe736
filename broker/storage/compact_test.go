package storage

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

func TestCompactionKeepsLatestPerKey(t *testing.T) {
	for _, codec := range []int{codecNone, codecGzip, codecZstd, codecSnappy, codecLZ4} {
		t.Run(fmt.Sprintf("codec=%d", codec), func(t *testing.T) {
			clk := newClock()
			dir := t.TempDir()
			cfg := Config{SegmentBytes: 2 << 10, CleanupPolicy: "delete", RetentionMs: -1, DeleteRetentionMs: 10 * 24 * time.Hour}
			l := openTest(t, dir, cfg, clk)
			now := clk.Now().UnixMilli()
			// 30 batches of 4 records over 5 keys; key k3 deleted by a tombstone early on.
			latestVal := map[string]string{}
			for i := 0; i < 30; i++ {
				var recs []testRecord
				for j := 0; j < 4; j++ {
					k := fmt.Sprintf("k%d", (i*4+j)%5)
					v := fmt.Sprintf("v%d-%d", i, j)
					if i == 20 && k == "k3" {
						recs = append(recs, testRecord{Key: []byte(k)})
						delete(latestVal, k)
						continue
					}
					if i > 20 && k == "k3" {
						k = "k4"
					}
					recs = append(recs, testRecord{Key: []byte(k), Value: []byte(v)})
					latestVal[k] = v
				}
				if _, err := l.AppendAsLeader(buildBatch(t, now, codec, recs), 0, -1); err != nil {
					t.Fatal(err)
				}
			}
			// Roll so everything is in inactive segments.
			clk.Add(8 * 24 * time.Hour)
			if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
				t.Fatal(err)
			}
			cfg.CleanupPolicy = "compact"
			l.SetConfig(cfg)
			before := l.Size()
			leo := l.LogEndOffset()
			values := func() (map[string]string, int) {
				got := map[string]string{}
				n := 0
				all := readAll(t, l, l.LogStartOffset())
				walkBatches(all, func(h batchHeader, b []byte) error {
					if err := checkCRC(b); err != nil {
						t.Fatal(err)
					}
					return walkBatchRecords(&h, b, func(r *rawRecord) bool {
						n++
						if r.Tombstone {
							delete(got, string(r.Key))
							return true
						}
						got[string(r.Key)] = recordValue(t, r.Raw)
						return true
					})
				})
				return got, n
			}
			if got, _ := values(); fmt.Sprint(got) != fmt.Sprint(latestVal) {
				t.Fatalf("before compaction state differs: %v vs %v", got, latestVal)
			}
			if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
				t.Fatal(err)
			}
			got, n := values()
			if fmt.Sprint(got) != fmt.Sprint(latestVal) {
				t.Fatalf("after compaction: %v, want %v", got, latestVal)
			}
			if n != 5 { // k0,k1,k2,k4 latest values + the k3 tombstone (within delete.retention.ms)
				t.Fatalf("%d records after compaction, want 5", n)
			}
			if l.Size() >= before || l.LogEndOffset() != leo {
				t.Fatalf("size %d -> %d, LEO %d -> %d", before, l.Size(), leo, l.LogEndOffset())
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// Reopen; once the delete horizon the first pass stamped on the tombstone's batch
			// (then + delete.retention.ms, KIP-534) has passed, the tombstone goes too; a shorter
			// delete.retention.ms set later does not move that horizon.
			cfg.DeleteRetentionMs = time.Hour
			l = openTest(t, dir, cfg, clk)
			defer l.Close()
			if got, _ := values(); fmt.Sprint(got) != fmt.Sprint(latestVal) {
				t.Fatalf("after reopen: %v", got)
			}
			if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
				t.Fatal(err)
			}
			if _, n := values(); n != 5 {
				t.Fatalf("%d records before the delete horizon, want 5", n)
			}
			// New data (rolled by segment.ms) makes the next pass, past the horizon.
			if _, err := l.AppendAsLeader(buildBatch(t, now, codec, []testRecord{{Key: []byte("k9"), Value: []byte("new")}}), 0, -1); err != nil {
				t.Fatal(err)
			}
			latestVal["k9"] = "new"
			clk.Add(10 * 24 * time.Hour)
			if err := l.Maintain(clk.Now(), l.LogEndOffset()); err != nil {
				t.Fatal(err)
			}
			if got, n := values(); n != 5 || fmt.Sprint(got) != fmt.Sprint(latestVal) {
				t.Fatalf("%d records after the delete horizon (%v), want the 5 latest values", n, got)
			}
		})
	}
}

// recordValue extracts the value of an encoded record (test helper).
func recordValue(t *testing.T, raw []byte) string {
	t.Helper()
	p := 0
	rd := func() int64 {
		v, k := varint(raw[p:])
		p += k
		return v
	}
	rd() // length
	p++  // attributes
	rd() // timestamp delta
	rd() // offset delta
	kl := rd()
	p += int(max(kl, 0))
	vl := rd()
	return string(raw[p : p+int(vl)])
}

func varint(b []byte) (int64, int) { return binary.Varint(b) }
