package proxy

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func frame(body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(b, body...)
}

// TestFramerSplitsAnyChunking feeds three frames cut into every chunk size: held frames come
// out whole, streamed bytes come out at once and in order, and nothing is lost or added.
func TestFramerSplitsAnyChunking(t *testing.T) {
	stream := append(append(frame("hello"), frame("")...), frame("a longer frame body")...)
	for size := 1; size <= len(stream); size++ {
		for _, hold := range []bool{false, true} {
			var f framer
			var got []byte
			var frames int
			for i := 0; i < len(stream); i += size {
				for _, p := range f.feed(stream[i:min(i+size, len(stream))], func() bool { return hold }) {
					got = append(got, p.b...)
					if p.frame {
						frames++
					}
				}
			}
			if !bytes.Equal(got, stream) {
				t.Fatalf("chunks of %d, hold %v: got %q", size, hold, got)
			}
			if want := map[bool]int{false: 0, true: 3}[hold]; frames != want {
				t.Fatalf("chunks of %d, hold %v: %d whole frames, want %d", size, hold, frames, want)
			}
		}
	}
	var f framer
	if out := f.feed([]byte{0x16, 0x03, 0x01, 0x02, 0x00}, func() bool { return true }); len(out) != 2 || !f.broken {
		t.Fatalf("a TLS record header was taken for a frame: %+v", out)
	}
}

// batch is one v2 record batch with a correct CRC32C.
func batch(ts int64) []byte {
	r := kmsg.Record{Value: []byte("value")}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	b := kmsg.RecordBatch{Magic: 2, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1,
		FirstTimestamp: ts, MaxTimestamp: ts, Records: r.AppendTo(nil)}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	raw := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], castagnoli))
	return b.AppendTo(nil)
}

func crcOK(b []byte) bool {
	return binary.BigEndian.Uint32(b[batchCRCAt:]) == crc32.Checksum(b[batchAttrsAt:], castagnoli)
}

func TestBatchRewrites(t *testing.T) {
	b := batch(1000)
	skewBatch(b, -250)
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil || rb.FirstTimestamp != 750 || rb.MaxTimestamp != 750 || !crcOK(b) {
		t.Fatalf("skewed batch: %+v %v, CRC ok %v", rb, err, crcOK(b))
	}
	two := append(batch(1), batch(2)...)
	rng := rand.New(rand.NewPCG(1, 2))
	if n := corruptBatches(rng, two, 1); n != 2 {
		t.Fatalf("corrupted %d of 2 batches at rate 1", n)
	}
	if crcOK(two[:len(two)/2]) || crcOK(two[len(two)/2:]) {
		t.Fatal("a corrupted batch still matches its CRC")
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch(5)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	wire := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c")).AppendRequest(nil, req, 42)
	rq, pr := parseRequest(wire)
	if !rq.ok || rq.key != 0 || rq.corr != 42 || rq.acks != -1 || pr == nil || len(pr.Topics[0].Partitions[0].Records) == 0 {
		t.Fatalf("parsed %+v", rq)
	}
	if c := withCorrelation(wire, -7); int32(binary.BigEndian.Uint32(c[8:])) != -7 || !bytes.Equal(c[12:], wire[12:]) {
		t.Fatal("the copy differs beyond its correlation id")
	}
}
