package broker_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
)

// sessionReq is a v12 fetch of session (id, epoch) naming partitions of topic at the given
// offsets.
func sessionReq(id, epoch int32, topic string, maxWait int32, offsets map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, 1, 50<<20
	req.SessionID, req.SessionEpoch = id, epoch
	if len(offsets) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		parts := make([]int32, 0, len(offsets))
		for p := range offsets {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, offsets[p], 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// fetched lists a response's partitions as "p:records" (number of records).
func fetched(t *testing.T, resp *kmsg.FetchResponse) string {
	t.Helper()
	var out []string
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			bs, err := decodeBatches(rp.RecordBatches)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, b := range bs {
				n += int(b.NumRecords)
			}
			out = append(out, fmt.Sprintf("%d:%d", rp.Partition, n))
		}
	}
	return strings.Join(out, " ")
}

// TestFetchSessionsOverTheWire: a full fetch opens a session, incremental fetches carry only
// what changed, and wrong epochs or ids get Kafka's session errors; the broker's metrics count
// each kind of request.
func TestFetchSessionsOverTheWire(t *testing.T) {
	p := brokertest.Start(t, brokertest.Metrics("127.0.0.1:0"))
	createTopic(t, newClient(t, p.Addr()), "fs", 3, nil)
	c := dialRaw(t, p.Addr())
	produceOK(t, c, "fs", 0, batch(testStart, []byte("a"), []byte("b")))
	produceOK(t, c, "fs", 1, batch(testStart, []byte("c")))

	full := c.roundTrip(sessionReq(0, 0, "fs", 0, map[int32]int64{0: 0, 1: 0, 2: 0})).(*kmsg.FetchResponse)
	if full.ErrorCode != 0 || full.SessionID <= 0 || fetched(t, full) != "0:2 1:1 2:0" {
		t.Fatalf("full fetch: error %v session %d partitions %q", kerr.ErrorForCode(full.ErrorCode), full.SessionID, fetched(t, full))
	}
	id := full.SessionID
	// Nothing new: the long poll ends after MaxWaitMs with no partition at all.
	start := time.Now()
	inc := c.roundTrip(sessionReq(id, 1, "fs", 300, map[int32]int64{0: 2, 1: 1})).(*kmsg.FetchResponse)
	if inc.ErrorCode != 0 || inc.SessionID != id || fetched(t, inc) != "" || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("idle incremental fetch: error %v session %d partitions %q after %v", kerr.ErrorForCode(inc.ErrorCode), inc.SessionID, fetched(t, inc), time.Since(start))
	}
	// New data on partition 2 only: the session remembers every partition's offset.
	produceOK(t, c, "fs", 2, batch(testStart, []byte("d"), []byte("e"), []byte("f")))
	inc = c.roundTrip(sessionReq(id, 2, "fs", 5000, nil)).(*kmsg.FetchResponse)
	if inc.ErrorCode != 0 || fetched(t, inc) != "2:3" {
		t.Fatalf("incremental fetch after a produce: error %v partitions %q", kerr.ErrorForCode(inc.ErrorCode), fetched(t, inc))
	}
	for _, tc := range []struct {
		id, epoch int32
		want      *kerr.Error
	}{{id, 2, kerr.InvalidFetchSessionEpoch}, {id + 1, 1, kerr.FetchSessionIDNotFound}} {
		resp := c.roundTrip(sessionReq(tc.id, tc.epoch, "fs", 5000, nil)).(*kmsg.FetchResponse)
		if resp.ErrorCode != tc.want.Code || len(resp.Topics) != 0 || resp.SessionID != 0 {
			t.Fatalf("session %d epoch %d: error %v with %d topics, want %v", tc.id, tc.epoch, kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics), tc.want)
		}
	}
	// The session survives a wrong epoch.
	if inc = c.roundTrip(sessionReq(id, 3, "fs", 0, nil)).(*kmsg.FetchResponse); inc.ErrorCode != 0 || inc.SessionID != id {
		t.Fatalf("after the errors: %v session %d", kerr.ErrorForCode(inc.ErrorCode), inc.SessionID)
	}
	m := p.MetricsAddr()
	for _, w := range []struct {
		series string
		want   float64
	}{
		{`kchaos_fetch_session_requests_total{mode="full"}`, 1},
		{`kchaos_fetch_session_requests_total{mode="incremental"}`, 3},
		{`kchaos_fetch_session_requests_total{mode="error"}`, 2},
		{`kafka_server_fetchsessioncache_numincrementalfetchsessions`, 1},
		{`kafka_server_fetchsessioncache_numincrementalfetchpartitionscached`, 3},
	} {
		if got := scrapeMetric(t, m, w.series); got != w.want {
			t.Errorf("%s = %v, want %v", w.series, got, w.want)
		}
	}

	off := brokertest.Start(t, brokertest.Set("max.incremental.fetch.session.cache.slots", "0"))
	createTopic(t, newClient(t, off.Addr()), "fs", 1, nil)
	if resp := dialRaw(t, off.Addr()).roundTrip(sessionReq(0, 0, "fs", 0, map[int32]int64{0: 0})).(*kmsg.FetchResponse); resp.SessionID != 0 {
		t.Fatalf("cache slots 0: session %d created", resp.SessionID)
	}
}

// TestFranzGoConsumesThroughFetchSessions: franz-go (which uses sessions by default) reads
// every record of 8 partitions, written before and while it consumes, and the broker served
// it incremental fetches.
func TestFranzGoConsumesThroughFetchSessions(t *testing.T) {
	p := brokertest.Start(t, brokertest.Metrics("127.0.0.1:0"))
	const parts, perPart = 8, 300
	admin := newClient(t, p.Addr())
	createTopic(t, admin, "fsg", parts, nil)
	prod := newClient(t, p.Addr(), kgo.DefaultProduceTopic("fsg"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond))
	produce := func(round int) {
		var wg sync.WaitGroup
		for i := 0; i < parts*perPart/2; i++ {
			wg.Add(1)
			r := &kgo.Record{Partition: int32(i % parts), Value: []byte(fmt.Sprintf("r%d-%d", round, i))}
			prod.Produce(ctx(t, 30*time.Second), r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		wg.Wait()
	}
	produce(0)
	cons := newClient(t, p.Addr(), kgo.ConsumeTopics("fsg"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	next := map[int32]int64{}
	total := 0
	readUntil := func(want int) {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for total < want && c.Err() == nil {
			fs := cons.PollFetches(c)
			fs.EachError(func(_ string, _ int32, err error) {
				if c.Err() == nil {
					t.Fatalf("fetch: %v", err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition]++
				total++
			})
		}
		if total != want {
			t.Fatalf("read %d records, want %d", total, want)
		}
	}
	readUntil(parts * perPart / 2)
	produce(1) // arrives while the consumer's session is open
	readUntil(parts * perPart)
	for part := int32(0); part < parts; part++ {
		if next[part] != perPart {
			t.Fatalf("partition %d: read up to %d, want %d", part, next[part], perPart)
		}
	}
	full := scrapeMetric(t, p.MetricsAddr(), `kchaos_fetch_session_requests_total{mode="full"}`)
	incremental := scrapeMetric(t, p.MetricsAddr(), `kchaos_fetch_session_requests_total{mode="incremental"}`)
	if full < 1 || incremental < 2 {
		t.Fatalf("franz-go was served %v full and %v incremental session fetches; sessions unused", full, incremental)
	}
	t.Logf("fetch requests: %v full, %v incremental", full, incremental)
}
