package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression codecs of the batch attributes.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// xerialMagic starts snappy data framed the way the Java client writes it.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// zstdDecoders recycles zstd decoders (each holds sizeable buffers) between decompressions.
var zstdDecoders sync.Pool

// decompress returns the records section of a batch in plain form. Snappy may come raw or in
// the xerial framing the Java client writes (isXerial).
func decompress(codec int, src []byte) (out []byte, err error) {
	switch codec {
	case codecNone:
		return src, nil
	case codecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		out, err = io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		return out, nil
	case codecSnappy:
		if !isXerial(src) {
			out, err = snappy.Decode(nil, src)
			if err != nil {
				return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
			}
			return out, nil
		}
		p := src[16:] // magic, version, compatible version
		for len(p) > 0 {
			if len(p) < 4 {
				return nil, fmt.Errorf("%w: xerial snappy chunk header", ErrCorrupt)
			}
			n := int(binary.BigEndian.Uint32(p))
			if n < 0 || n > len(p)-4 {
				return nil, fmt.Errorf("%w: xerial snappy chunk length", ErrCorrupt)
			}
			block, err := snappy.Decode(nil, p[4:4+n])
			if err != nil {
				return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
			}
			out = append(out, block...)
			p = p[4+n:]
		}
		return out, nil
	case codecLZ4:
		out, err = io.ReadAll(lz4.NewReader(bytes.NewReader(src)))
		if err != nil {
			return nil, fmt.Errorf("%w: lz4: %w", ErrCorrupt, err)
		}
		return out, nil
	case codecZstd:
		d, ok := zstdDecoders.Get().(*zstd.Decoder)
		if !ok {
			var err error
			if d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1)); err != nil {
				return nil, fmt.Errorf("storage: zstd: %w", err)
			}
		}
		defer zstdDecoders.Put(d)
		out, err = d.DecodeAll(src, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: compression codec %d", ErrCorrupt, codec)
}

// isXerial reports whether snappy data uses the xerial framing.
func isXerial(src []byte) bool { return bytes.HasPrefix(src, xerialMagic) }

// compress encodes a records section with codec (xerial framing for snappy when asked).
func compress(codec int, src []byte, xerial bool) ([]byte, error) {
	var buf bytes.Buffer
	switch codec {
	case codecNone:
		return src, nil
	case codecGzip:
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("storage: gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("storage: gzip: %w", err)
		}
		return buf.Bytes(), nil
	case codecSnappy:
		if !xerial {
			return snappy.Encode(nil, src), nil
		}
		out := append([]byte(nil), xerialMagic...)
		out = binary.BigEndian.AppendUint32(out, 1)
		out = binary.BigEndian.AppendUint32(out, 1)
		for p := src; len(p) > 0; {
			n := min(len(p), 32<<10)
			block := snappy.Encode(nil, p[:n])
			out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
			out = append(out, block...)
			p = p[n:]
		}
		return out, nil
	case codecLZ4:
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("storage: lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("storage: lz4: %w", err)
		}
		return buf.Bytes(), nil
	case codecZstd:
		e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("storage: zstd: %w", err)
		}
		defer e.Close()
		return e.EncodeAll(src, nil), nil
	}
	return nil, fmt.Errorf("%w: compression codec %d", ErrCorrupt, codec)
}

// rawRecord is one record of a batch: its whole encoding (length prefix included) plus the
// fields the log needs.
type rawRecord struct {
	Raw []byte
	// Attributes is the record's attributes byte (unused by Kafka so far).
	Attributes byte
	// TimestampDelta and OffsetDelta are relative to the batch's FirstTimestamp and BaseOffset.
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil when the key is null
	Tombstone      bool   // value is null
	// rest is the encoding after the offset delta (key, value, headers), for re-encoding.
	rest []byte
}

// parseRecords splits a plain records section into n records.
func parseRecords(b []byte, n int) ([]rawRecord, error) {
	recs := make([]rawRecord, 0, n)
	err := walkRecords(b, n, func(r *rawRecord) bool {
		recs = append(recs, *r)
		return true
	})
	return recs, err
}

// walkRecords calls fn for each of the n records of a plain records section until fn returns
// false; the record passed is reused between calls. A record that does not parse is
// ErrCorrupt.
func walkRecords(b []byte, n int, fn func(r *rawRecord) bool) error {
	var r rawRecord
	for i := 0; i < n; i++ {
		length, k := binary.Varint(b)
		if k <= 0 || length < 1 || int64(len(b)-k) < length {
			return fmt.Errorf("%w: record %d length", ErrCorrupt, i)
		}
		r = rawRecord{Raw: b[:k+int(length)], Attributes: b[k]}
		body := b[k+1 : k+int(length)]
		b = b[k+int(length):]
		var k1, k2 int
		r.TimestampDelta, k1 = binary.Varint(body)
		if k1 <= 0 {
			return fmt.Errorf("%w: record %d timestamp delta", ErrCorrupt, i)
		}
		od, k2 := binary.Varint(body[k1:])
		if k2 <= 0 || od < 0 || od > math.MaxInt32 {
			return fmt.Errorf("%w: record %d offset delta", ErrCorrupt, i)
		}
		r.OffsetDelta = int32(od)
		p := k1 + k2
		r.rest = body[p:]
		keyLen, k := binary.Varint(body[p:])
		if k <= 0 || keyLen < -1 || int64(len(body)-p-k) < keyLen {
			return fmt.Errorf("%w: record %d key", ErrCorrupt, i)
		}
		p += k
		if keyLen >= 0 {
			r.Key = body[p : p+int(keyLen)]
			p += int(keyLen)
		}
		valLen, k := binary.Varint(body[p:])
		if k <= 0 || valLen < -1 {
			return fmt.Errorf("%w: record %d value", ErrCorrupt, i)
		}
		r.Tombstone = valLen < 0
		if !fn(&r) {
			return nil
		}
	}
	return nil
}

// appendRecord appends r re-encoded with a new timestamp delta (the batch's FirstTimestamp
// changed), keeping its attributes, offset delta, key, value and headers.
func appendRecord(dst []byte, r rawRecord, timestampDelta int64) []byte {
	var hdr [1 + 2*binary.MaxVarintLen64]byte
	hdr[0] = r.Attributes
	n := 1 + binary.PutVarint(hdr[1:], timestampDelta)
	n += binary.PutVarint(hdr[n:], int64(r.OffsetDelta))
	dst = binary.AppendVarint(dst, int64(n+len(r.rest)))
	dst = append(dst, hdr[:n]...)
	return append(dst, r.rest...)
}
