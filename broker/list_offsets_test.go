package broker_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
)

// timedBatch builds an uncompressed batch whose records carry timestamps first+deltas[i].
func timedBatch(first int64, deltas ...int64) []byte {
	var recs []byte
	maxTS := first
	for i, d := range deltas {
		r := kmsg.Record{TimestampDelta64: d, OffsetDelta: int32(i), Value: []byte{byte(i)}}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
		maxTS = max(maxTS, first+d)
	}
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(deltas) - 1),
		FirstTimestamp: first, MaxTimestamp: maxTS, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(deltas)), Records: recs}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	fixCRC(out)
	return out
}

// stepDeltas returns n timestamp deltas step ms apart, from 0.
func stepDeltas(n int, step int64) []int64 {
	d := make([]int64, n)
	for i := range d {
		d[i] = int64(i) * step
	}
	return d
}

// listOffsetsV asks for one partition's offset at ts with ListOffsets version v.
func listOffsetsV(t *testing.T, c *rawConn, v int16, topic string, parts []int32, ts int64) []kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(v)
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch, rp.MaxNumOffsets = p, ts, -1, 1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return c.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions
}

// TestListOffsetsEveryVersion checks each timestamp kind at the versions that may carry it,
// with the answers Kafka gives on a broker without tiered storage.
func TestListOffsetsEveryVersion(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "lov", 1, nil)
	c := dialRaw(t, p.Addr())
	// Offsets 0-19 at b+1000, b+1010, ..., b+1190 in one batch; offsets 20-22 at b+5000,
	// b+7000, b+6000 (b recent enough for retention to keep them).
	b := time.Now().UnixMilli()
	produceOK(t, c, "lov", 0, timedBatch(b+1000, stepDeltas(20, 10)...))
	produceOK(t, c, "lov", 0, timedBatch(b+5000, 0, 2000, 1000))
	epoch := listOffsetsV(t, c, 4, "lov", []int32{0}, -1)[0].LeaderEpoch
	type want struct {
		err        *kerr.Error
		offset, ts int64
		epoch      int32
	}
	for _, tc := range []struct {
		v    int16
		ts   int64
		want want
	}{
		{0, -1, want{nil, 23, -1, 0}},
		{1, b + 1105, want{nil, 11, b + 1110, 0}},
		{4, b + 1105, want{nil, 11, b + 1110, epoch}},
		{4, b + 6500, want{nil, 21, b + 7000, epoch}},
		{4, b + 7001, want{nil, -1, -1, -1}},
		{6, -2, want{nil, 0, -1, epoch}},
		{6, -3, want{kerr.UnsupportedVersion, -1, -1, -1}},
		{7, -3, want{nil, 21, b + 7000, epoch}},
		{7, -4, want{kerr.UnsupportedVersion, -1, -1, -1}},
		{8, -4, want{nil, 0, -1, epoch}},
		{8, -5, want{kerr.UnsupportedVersion, -1, -1, -1}},
		{9, -5, want{nil, -1, -1, -1}},
		{10, -6, want{kerr.UnsupportedVersion, -1, -1, -1}},
		{10, b + 1000, want{nil, 0, b + 1000, epoch}},
		{11, -6, want{nil, -1, -1, -1}},
		{11, -1, want{nil, 23, -1, epoch}},
		{11, -7, want{kerr.UnsupportedVersion, -1, -1, -1}},
	} {
		got := listOffsetsV(t, c, tc.v, "lov", []int32{0}, tc.ts)[0]
		w := tc.want
		var wantCode int16
		if w.err != nil {
			wantCode = w.err.Code
		}
		if tc.v == 0 {
			if got.ErrorCode != 0 || len(got.OldStyleOffsets) != 1 || got.OldStyleOffsets[0] != w.offset {
				t.Errorf("v0: error %v OldStyleOffsets %v, want [%d]", kerr.ErrorForCode(got.ErrorCode), got.OldStyleOffsets, w.offset)
			}
			continue
		}
		if got.ErrorCode != wantCode || got.Offset != w.offset || got.Timestamp != w.ts || tc.v >= 4 && got.LeaderEpoch != w.epoch {
			t.Errorf("v%d timestamp %d: error %v offset %d timestamp %d epoch %d, want %v %d %d %d",
				tc.v, tc.ts, kerr.ErrorForCode(got.ErrorCode), got.Offset, got.Timestamp, got.LeaderEpoch, w.err, w.offset, w.ts, w.epoch)
		}
	}
	// A partition named twice is INVALID_REQUEST for both.
	for _, got := range listOffsetsV(t, c, 7, "lov", []int32{0, 0}, -1) {
		if got.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("duplicate partition: %v, want INVALID_REQUEST", kerr.ErrorForCode(got.ErrorCode))
		}
	}
}

// TestClientsSeekByTime: franz-go and Sarama find the first record at or after a timestamp
// inside a batch, as against Kafka.
func TestClientsSeekByTime(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "seek", 1, nil)
	c := dialRaw(t, p.Addr())
	base := time.Now().UnixMilli()
	produceOK(t, c, "seek", 0, timedBatch(base, stepDeltas(20, 10)...))
	target := base + 105 // between offsets 10 and 11

	cl := newClient(t, p.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"seek": {0: kgo.NewOffset().AfterMilli(target)}}))
	fs := cl.PollFetches(ctx(t, 10*time.Second))
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) == 0 || recs[0].Offset != 11 {
		first := int64(-1)
		if len(recs) > 0 {
			first = recs[0].Offset
		}
		t.Fatalf("franz-go AfterMilli: %d records from offset %d, want offset 11 first", len(recs), first)
	}

	client, err := sarama.NewClient([]string{p.Addr()}, saramaConfig(sarama.V4_0_0_0, sarama.CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if off, err := client.GetOffset("seek", 0, target); err != nil || off != 11 {
		t.Fatalf("Sarama GetOffset: %d %v, want 11", off, err)
	}
}
