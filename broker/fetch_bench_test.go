package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fillPartition appends total bytes of 1 KiB records in 1 MiB uncompressed batches to
// partition 0 of a new topic.
func fillPartition(tb testing.TB, b *Broker, topicName string, total int64) {
	tb.Helper()
	p := createTestTopic(tb, b, topicName, 1).partitions[0]
	value := make([]byte, 1024)
	var batch kmsg.RecordBatch
	for i := 0; i < 1000; i++ {
		batch.Records = appendRecord(batch.Records, int32(i), value)
	}
	batch.Magic = 2
	batch.NumRecords = 1000
	batch.LastOffsetDelta = 999
	batch.ProducerID = -1
	batch.FirstSequence = -1
	batch.FirstTimestamp = time.Now().UnixMilli()
	batch.MaxTimestamp = batch.FirstTimestamp
	raw := batch.AppendTo(nil)
	raw = fixBatch(raw)
	for written := int64(0); written < total; written += int64(len(raw)) {
		buf := append([]byte(nil), raw...)
		if _, kerrv, msg := b.appendAsLeader(p, buf, -1); kerrv != nil {
			tb.Fatal(kerrv, msg)
		}
	}
}

// appendRecord appends one uncompressed v2 record with a null key and no headers.
func appendRecord(dst []byte, offsetDelta int32, value []byte) []byte {
	body := []byte{0}                  // attributes
	body = kbin.AppendVarlong(body, 0) // timestamp delta
	body = kbin.AppendVarint(body, offsetDelta)
	body = kbin.AppendVarint(body, -1) // null key
	body = kbin.AppendVarintBytes(body, value)
	body = kbin.AppendVarint(body, 0) // headers
	dst = kbin.AppendVarint(dst, int32(len(body)))
	return append(dst, body...)
}

// fixBatch sets a batch's length and CRC after kmsg encoding left them zero.
func fixBatch(raw []byte) []byte {
	binary.BigEndian.PutUint32(raw[batchLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[batchCRC:], crc32.Checksum(raw[batchAttributes:], castagnoli))
	return raw
}

// BenchmarkFetchFromDisk reads a 1 GiB partition from the start with a franz-go consumer,
// with the sendfile splice and with the copy path, and reports MB/s for each.
func BenchmarkFetchFromDisk(b *testing.B) {
	const total = 1 << 30
	br := startInProcess(b, Config{NodeID: 1}, nil)
	fillPartition(b, br, "big", total)
	hw := br.topics["big"].partitions[0].HighWatermark()
	for _, zc := range []bool{true, false} {
		b.Run(fmt.Sprintf("size=1GiB,sendfile=%v", zc), func(b *testing.B) {
			zeroCopy = zc
			defer func() { zeroCopy = true }()
			b.SetBytes(total)
			for i := 0; i < b.N; i++ {
				cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"big": {0: kgo.NewOffset().AtStart()}}),
					kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
				if err != nil {
					b.Fatal(err)
				}
				var n int64
				for n < hw {
					fs := cl.PollFetches(context.Background())
					if err := fs.Err(); err != nil {
						b.Fatal(err)
					}
					n += int64(fs.NumRecords())
				}
				cl.Close()
			}
		})
	}
}

// BenchmarkFetchManyPartitions reads 128 partitions of 200 small records each with a
// franz-go consumer whose fetches return at most 4 KiB per partition, so a read takes many
// fetch round trips; with fetch sessions (franz-go's default) the later requests name only
// partitions whose offsets moved and responses carry only partitions with news. It reports
// the broker's response bytes per read beside the time.
func BenchmarkFetchManyPartitions(b *testing.B) {
	const parts, perPart = 128, 200
	br := startInProcess(b, Config{NodeID: 1}, nil)
	tp := createTestTopic(b, br, "many", parts)
	var batch kmsg.RecordBatch
	for i := 0; i < perPart; i++ {
		batch.Records = appendRecord(batch.Records, int32(i), make([]byte, 100))
	}
	batch.Magic, batch.NumRecords, batch.LastOffsetDelta = 2, perPart, perPart-1
	batch.ProducerID, batch.FirstSequence = -1, -1
	batch.FirstTimestamp = time.Now().UnixMilli()
	batch.MaxTimestamp = batch.FirstTimestamp
	raw := fixBatch(batch.AppendTo(nil))
	offsets := map[int32]kgo.Offset{}
	for i, p := range tp.partitions {
		if _, kerrv, msg := br.appendAsLeader(p, append([]byte(nil), raw...), -1); kerrv != nil {
			b.Fatal(kerrv, msg)
		}
		offsets[int32(i)] = kgo.NewOffset().AtStart()
	}
	for _, sessions := range []bool{true, false} {
		b.Run(fmt.Sprintf("partitions=%d,sessions=%v", parts, sessions), func(b *testing.B) {
			opts := []kgo.Opt{kgo.SeedBrokers(br.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"many": offsets}),
				kgo.FetchMaxPartitionBytes(4 << 10), kgo.FetchMaxWait(10 * time.Millisecond)}
			if !sessions {
				opts = append(opts, kgo.DisableFetchSessions())
			}
			bytesBefore := metricValue(b, br.metrics.bytesOutTotal)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					b.Fatal(err)
				}
				for n := 0; n < parts*perPart; {
					fs := cl.PollFetches(context.Background())
					if err := fs.Err(); err != nil {
						b.Fatal(err)
					}
					n += fs.NumRecords()
				}
				cl.Close()
			}
			b.StopTimer()
			b.ReportMetric((metricValue(b, br.metrics.bytesOutTotal)-bytesBefore)/float64(b.N), "response-B/op")
		})
	}
}

// TestFetchCopyPathMatchesSendfile: the copy path (zeroCopy off) serves the same records as the
// sendfile splice.
func TestFetchCopyPathMatchesSendfile(t *testing.T) {
	br := startInProcess(t, Config{NodeID: 1}, nil)
	fillPartition(t, br, "small", 3<<20)
	hw := br.topics["small"].partitions[0].HighWatermark()
	read := func() int64 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"small": {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var n, next int64
		for next < hw && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next || len(r.Value) != 1024 {
					t.Fatalf("record at %d (want %d) of %d bytes", r.Offset, next, len(r.Value))
				}
				next++
				n++
			})
		}
		return n
	}
	zeroCopy = false
	copied := read()
	zeroCopy = true
	if spliced := read(); copied != hw || spliced != hw {
		t.Fatalf("copy path read %d records, sendfile %d, want %d", copied, spliced, hw)
	}
}
