package broker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
)

// Fetch and produce behaviour over raw connections: long poll, size limits, timestamps.

func produceOK(t *testing.T, c *rawConn, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	sp := c.roundTrip(produceReq(-1, topic, partition, records)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
		t.Fatalf("produce: %v (%s)", err, deref(sp.ErrorMessage))
	}
	return sp
}

func fetch(t *testing.T, c *rawConn, req *kmsg.FetchRequest) (kmsg.FetchResponseTopicPartition, time.Duration) {
	t.Helper()
	start := time.Now()
	resp := c.roundTrip(req).(*kmsg.FetchResponse)
	return resp.Topics[0].Partitions[0], time.Since(start)
}

func TestFetchLongPoll(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "poll", 1, nil)
	c := dialRaw(t, p.Addr())
	produceOK(t, c, "poll", 0, batch(testStart, []byte("first")))

	// No data past the high watermark: the fetch waits MaxWaitMs and returns empty.
	sp, took := fetch(t, c, fetchReq("poll", 0, 1, 300, 1, 1<<20))
	if sp.ErrorCode != 0 || len(sp.RecordBatches) != 0 || sp.HighWatermark != 1 {
		t.Fatalf("empty long poll: error %v, %d bytes, high watermark %d", kerr.ErrorForCode(sp.ErrorCode), len(sp.RecordBatches), sp.HighWatermark)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("empty long poll with MaxWaitMs=300 took %v", took)
	}

	// Data arriving during the wait ends it early.
	type result struct {
		sp   kmsg.FetchResponseTopicPartition
		took time.Duration
	}
	done := make(chan result, 1)
	poller := dialRaw(t, p.Addr())
	go func() {
		start := time.Now()
		poller.write(poller.frame(fetchReq("poll", 0, 1, 20000, 1, 1<<20)))
		b, err := poller.readFrame(30 * time.Second)
		if err != nil {
			done <- result{}
			return
		}
		resp := poller.decode(fetchReq("poll", 0, 1, 0, 0, 0), b).(*kmsg.FetchResponse)
		done <- result{resp.Topics[0].Partitions[0], time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond) // let the fetch start waiting; correctness does not depend on it
	produceOK(t, c, "poll", 0, batch(testStart+1, []byte("second")))
	r := <-done
	bs, err := decodeBatches(r.sp.RecordBatches)
	if err != nil || len(bs) != 1 || bs[0].FirstOffset != 1 {
		t.Fatalf("long poll woken by a produce: %d batches, err %v", len(bs), err)
	}
	if r.took > 10*time.Second {
		t.Fatalf("long poll with MaxWaitMs=20000 returned after %v, not when data arrived", r.took)
	}
}

func TestFetchPartitionMaxBytes(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "sizes", 1, nil)
	c := dialRaw(t, p.Addr())
	one := batch(testStart, bytes.Repeat([]byte("v"), 1000))
	for i := 0; i < 10; i++ {
		produceOK(t, c, "sizes", 0, batch(testStart, bytes.Repeat([]byte("v"), 1000)))
	}
	for _, tc := range []struct {
		name     string
		maxBytes int32
		batches  int
	}{
		{"room for 2.5 batches", int32(len(one))*5/2 + 1, 2},
		{"exactly 3 batches", int32(len(one)) * 3, 3},
		{"smaller than one batch", 10, 1}, // KIP-74: the first batch comes whole
		{"everything", 1 << 20, 10},
	} {
		sp, _ := fetch(t, c, fetchReq("sizes", 0, 0, 0, 0, tc.maxBytes))
		bs, err := decodeBatches(sp.RecordBatches)
		if err != nil || len(bs) != tc.batches {
			t.Errorf("%s (PartitionMaxBytes=%d): %d whole batches (%d bytes), err %v; want %d", tc.name, tc.maxBytes, len(bs), len(sp.RecordBatches), err, tc.batches)
		}
	}
}

func TestLogAppendTime(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	c := dialRaw(t, p.Addr())
	before := time.Now().UnixMilli()
	sp := produceOK(t, c, "lat", 0, timedBatch(978307200000, 0, 0)) // two records of 2001-01-01
	after := time.Now().UnixMilli()
	if sp.LogAppendTime < before || sp.LogAppendTime > after {
		t.Fatalf("produce response LogAppendTime %d, want within [%d, %d]", sp.LogAppendTime, before, after)
	}
	fp, _ := fetch(t, c, fetchReq("lat", 0, 0, 0, 0, 1<<20))
	bs, err := decodeBatches(fp.RecordBatches)
	if err != nil || len(bs) != 1 {
		t.Fatalf("fetch: %d batches, err %v", len(bs), err)
	}
	b := bs[0]
	if b.Attributes&0x08 == 0 || b.MaxTimestamp != sp.LogAppendTime {
		t.Fatalf("stored batch: attributes %#x MaxTimestamp %d, want the LogAppendTime flag and %d", b.Attributes, b.MaxTimestamp, sp.LogAppendTime)
	}
	if lo := listOffset(t, newClient(t, p.Addr()), "lat", 0, before); lo.Offset != 0 || lo.Timestamp != sp.LogAppendTime {
		t.Fatalf("ListOffsets by the append time: %+v", lo)
	}
}

func TestMaxMessageBytes(t *testing.T) {
	p := brokertest.Start(t, brokertest.Set("message.max.bytes", "4000"))
	cl := newClient(t, p.Addr())
	createTopic(t, cl, "small", 1, nil)
	createTopic(t, cl, "big", 1, map[string]string{"max.message.bytes": "20000"})
	c := dialRaw(t, p.Addr())
	large := batch(testStart, bytes.Repeat([]byte("x"), 8000))
	sp := c.roundTrip(produceReq(1, "small", 0, large)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("8 KB batch over message.max.bytes=4000: %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(sp.ErrorCode))
	}
	produceOK(t, c, "big", 0, large) // the topic's max.message.bytes overrides the broker's
	if lo := listOffset(t, cl, "small", 0, -1); lo.Offset != 0 {
		t.Fatalf("rejected batch was appended: high watermark %d", lo.Offset)
	}
}
