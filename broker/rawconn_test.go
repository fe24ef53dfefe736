package broker_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Raw connections speak the wire protocol directly, so tests can send what no client would.

type rawConn struct {
	t    testing.TB
	nc   net.Conn
	corr int32
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// frame encodes req at its set version as a complete request frame (size prefix included).
func (c *rawConn) frame(req kmsg.Request) []byte {
	c.corr++
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, c.corr)
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one response frame, or returns the error that ended the connection.
func (c *rawConn) readFrame(timeout time.Duration) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c.nc, b)
	return b, err
}

// roundTrip sends req and decodes its response (response header v0 for ApiVersions, v1 for
// other flexible versions).
func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.write(c.frame(req))
	b, err := c.readFrame(10 * time.Second)
	if err != nil {
		c.t.Fatalf("%s: read response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return c.decode(req, b)
}

func (c *rawConn) decode(req kmsg.Request, b []byte) kmsg.Response {
	c.t.Helper()
	r := kbin.Reader{Src: b}
	if corr := r.Int32(); corr != c.corr {
		c.t.Fatalf("correlation id %d, want %d", corr, c.corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&r)
	}
	if err := resp.ReadFrom(r.Src); err != nil {
		c.t.Fatalf("%s: decode response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// expectClosed asserts the broker closes the connection without answering.
func (c *rawConn) expectClosed(what string) {
	c.t.Helper()
	b, err := c.readFrame(10 * time.Second)
	if err == nil {
		c.t.Fatalf("%s: got a %d-byte response, want the connection closed", what, len(b))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("%s: connection neither answered nor closed within 10s", what)
	}
}

// testStart is when the test binary started, in ms: a timestamp recent enough that retention
// (7 days by default, checked every second) keeps what tests write.
var testStart = time.Now().UnixMilli()

// batch builds a valid uncompressed magic-2 record batch of values with first timestamp ts.
func batch(ts int64, values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: v, Key: []byte(fmt.Sprint("k", i))}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // the zero length took one byte
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
		Records:              recs,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	fixCRC(out)
	return out
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fixCRC recomputes a batch's CRC32C after the test edited it.
func fixCRC(b []byte) { binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli)) }

// decodeBatches splits fetched record data into batches, checking each one's length, magic and
// CRC32C, as a consumer that validates would.
func decodeBatches(b []byte) ([]kmsg.RecordBatch, error) {
	var out []kmsg.RecordBatch
	for len(b) > 0 {
		if len(b) < 61 {
			return out, fmt.Errorf("%d trailing bytes, shorter than a batch header", len(b))
		}
		n := int(int32(binary.BigEndian.Uint32(b[8:]))) + 12
		if n < 61 || n > len(b) {
			return out, fmt.Errorf("batch length %d does not fit the %d bytes left", n, len(b))
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:n]); err != nil {
			return out, err
		}
		if rb.Magic != 2 {
			return out, fmt.Errorf("batch at offset %d has magic %d", rb.FirstOffset, rb.Magic)
		}
		if got := crc32.Checksum(b[21:n], castagnoli); uint32(rb.CRC) != got {
			return out, fmt.Errorf("batch at offset %d: CRC %08x, computed %08x", rb.FirstOffset, uint32(rb.CRC), got)
		}
		out = append(out, rb)
		b = b[n:]
	}
	return out, nil
}

// produceReq is a v9 produce of one batch to one partition.
func produceReq(acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchReq is a v11 fetch (topics by name) of one partition.
func fetchReq(topic string, partition int32, offset int64, maxWait, minBytes, partMaxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, 50<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = partition, offset, partMaxBytes, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}
