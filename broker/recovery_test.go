package broker_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/internal/testkit"
)

// TestKillRecovery SIGKILLs a real broker process while a producer writes to it, restarts it on
// the same data directory and checks that every acknowledged record is readable at its
// acknowledged offset with its value, and that the logs hold only whole, valid batches.
func TestKillRecovery(t *testing.T) {
	rng := testkit.Rand(t)
	const partitions = 4
	// Small segments so the kill usually lands after several rolls.
	p := brokertest.Start(t, brokertest.Set("log.segment.bytes", "65536"))
	createTopic(t, newClient(t, p.Addr()), "crash", partitions, nil)

	var mu sync.Mutex
	var acked []rec
	prod, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.DefaultProduceTopic("crash"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(1),
		kgo.ProducerBatchCompression(kgo.NoCompression(), kgo.Lz4Compression()))
	if err != nil {
		t.Fatal(err)
	}
	// Kill once a few thousand records are acknowledged, while the producer is still writing.
	killAfter := 2000 + rng.IntN(3000)
	pctx, stopProducing := context.WithCancel(context.Background())
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; pctx.Err() == nil; i++ {
			size := 10 + rng.IntN(300)
			r := &kgo.Record{Partition: int32(i % partitions), Value: []byte(value("crash", i, size))}
			prod.Produce(pctx, r, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked = append(acked, rec{r.Partition, r.Offset, string(r.Value)})
					mu.Unlock()
				}
			})
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= killAfter {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records acknowledged in 20s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Kill()
	stopProducing()
	<-produced
	prod.Close() // fails what is still buffered; only callbacks with err == nil count
	mu.Lock()
	ackedAtKill := append([]rec(nil), acked...)
	mu.Unlock()
	t.Logf("killed after %d acknowledged records", len(ackedAtKill))

	// A write torn by a power cut (which SIGKILL alone does not produce): half a batch at the
	// end of partition 0's active segment.
	segs, err := filepath.Glob(filepath.Join(p.DataDir(), "crash-0", "*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments of crash-0 in %s: %v", p.DataDir(), err)
	}
	sort.Strings(segs)
	torn := batch(testStart, []byte("torn write"), []byte("never acknowledged"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn[:len(torn)/2]); err != nil {
		t.Fatal(err)
	}
	f.Close()

	p.Restart()
	if !strings.Contains(p.Stderr(), "recovered logs") {
		t.Fatalf("restart did not recover:\n%s", p.Stderr())
	}
	read := readAll(t, p.Addr(), "crash", partitions)
	checkAcked(t, ackedAtKill, read)
	c := dialRaw(t, p.Addr())
	var ends [partitions]int64
	for part := int32(0); part < partitions; part++ {
		ends[part] = checkWholeBatches(t, c, "crash", part)
	}

	// The recovered logs take new appends right after their recovered ends.
	for part := int32(0); part < partitions; part++ {
		sp := produceOK(t, c, "crash", part, batch(testStart, []byte("after")))
		if sp.BaseOffset != ends[part] {
			t.Fatalf("partition %d: first append after recovery at offset %d, want %d", part, sp.BaseOffset, ends[part])
		}
	}
}

// checkAcked asserts that every acknowledged record was read at its offset with its value;
// records that were written but whose acknowledgement the kill cut off may be there too.
func checkAcked(t *testing.T, acked []rec, read map[int32][]rec) {
	t.Helper()
	got := map[int32]map[int64]string{}
	for p, rs := range read {
		got[p] = map[int64]string{}
		for _, r := range rs {
			got[p][r.Offset] = r.Value
		}
	}
	for _, a := range acked {
		v, ok := got[a.Partition][a.Offset]
		if !ok {
			t.Fatalf("acknowledged record %d/%d (%.20q) lost", a.Partition, a.Offset, a.Value)
		}
		if v != a.Value {
			t.Fatalf("acknowledged record %d/%d: read %.20q, acknowledged %.20q", a.Partition, a.Offset, v, a.Value)
		}
	}
}

// checkWholeBatches fetches a partition to its high watermark over a raw connection and checks
// that it is a gapless run of valid batches (length, magic, CRC32C) ending at the high
// watermark. It returns the high watermark.
func checkWholeBatches(t *testing.T, c *rawConn, topic string, partition int32) int64 {
	t.Helper()
	next := int64(0)
	for {
		sp, _ := fetch(t, c, fetchReq(topic, partition, next, 0, 0, 1<<20))
		if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
			t.Fatalf("fetch %s-%d@%d: %v", topic, partition, next, err)
		}
		if next >= sp.HighWatermark {
			return sp.HighWatermark
		}
		bs, err := decodeBatches(sp.RecordBatches)
		if err != nil {
			t.Fatalf("%s-%d@%d: %v", topic, partition, next, err)
		}
		if len(bs) == 0 {
			t.Fatalf("%s-%d@%d: no batches below the high watermark %d", topic, partition, next, sp.HighWatermark)
		}
		for _, b := range bs {
			if b.FirstOffset != next {
				t.Fatalf("%s-%d: batch at offset %d, want %d (gap or overlap)", topic, partition, b.FirstOffset, next)
			}
			next = b.FirstOffset + int64(b.LastOffsetDelta) + 1
		}
		if next > sp.HighWatermark {
			t.Fatalf("%s-%d: batches end at %d past the high watermark %d", topic, partition, next, sp.HighWatermark)
		}
	}
}
