package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

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

// decompress returns the records section of a batch in plain form. For snappy it also
// reports whether the input used xerial framing, so compaction can write it back alike.
func decompress(codec int, src []byte) (out []byte, xerial bool, err error) {
	switch codec {
	case codecNone:
		return src, false, nil
	case codecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, false, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		out, err = io.ReadAll(r)
		if err != nil {
			return nil, false, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		return out, false, nil
	case codecSnappy:
		if !bytes.HasPrefix(src, xerialMagic) {
			out, err = snappy.Decode(nil, src)
			if err != nil {
				return nil, false, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
			}
			return out, false, nil
		}
		p := src[16:] // magic, version, compatible version
		for len(p) > 0 {
			if len(p) < 4 {
				return nil, true, fmt.Errorf("%w: xerial snappy chunk header", ErrCorrupt)
			}
			n := int(binary.BigEndian.Uint32(p))
			if n < 0 || n > len(p)-4 {
				return nil, true, fmt.Errorf("%w: xerial snappy chunk length", ErrCorrupt)
			}
			block, err := snappy.Decode(nil, p[4:4+n])
			if err != nil {
				return nil, true, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
			}
			out = append(out, block...)
			p = p[4+n:]
		}
		return out, true, nil
	case codecLZ4:
		out, err = io.ReadAll(lz4.NewReader(bytes.NewReader(src)))
		if err != nil {
			return nil, false, fmt.Errorf("%w: lz4: %w", ErrCorrupt, err)
		}
		return out, false, nil
	case codecZstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, false, fmt.Errorf("storage: zstd: %w", err)
		}
		defer d.Close()
		out, err = d.DecodeAll(src, nil)
		if err != nil {
			return nil, false, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
		}
		return out, false, nil
	}
	return nil, false, fmt.Errorf("%w: compression codec %d", ErrCorrupt, codec)
}

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
// fields compaction needs.
type rawRecord struct {
	Raw         []byte
	OffsetDelta int32
	Key         []byte // nil when the key is null
	Tombstone   bool   // value is null
}

// parseRecords splits a plain records section into n records.
func parseRecords(b []byte, n int) ([]rawRecord, error) {
	recs := make([]rawRecord, 0, n)
	for i := 0; i < n; i++ {
		length, k := binary.Varint(b)
		if k <= 0 || length < 0 || int64(len(b)-k) < length {
			return nil, fmt.Errorf("%w: record %d length", ErrCorrupt, i)
		}
		raw := b[:k+int(length)]
		body := b[k : k+int(length)]
		b = b[k+int(length):]
		p := 1 // attributes
		if len(body) < p {
			return nil, fmt.Errorf("%w: record %d body", ErrCorrupt, i)
		}
		var fields [2]int64
		for j := range fields { // timestampDelta, offsetDelta
			v, k := binary.Varint(body[p:])
			if k <= 0 {
				return nil, fmt.Errorf("%w: record %d varint", ErrCorrupt, i)
			}
			fields[j], p = v, p+k
		}
		r := rawRecord{Raw: raw, OffsetDelta: int32(fields[1])}
		keyLen, k := binary.Varint(body[p:])
		if k <= 0 || keyLen < -1 || int64(len(body)-p-k) < keyLen {
			return nil, fmt.Errorf("%w: record %d key", ErrCorrupt, i)
		}
		p += k
		if keyLen >= 0 {
			r.Key = body[p : p+int(keyLen)]
			p += int(keyLen)
		}
		valLen, k := binary.Varint(body[p:])
		if k <= 0 || valLen < -1 {
			return nil, fmt.Errorf("%w: record %d value", ErrCorrupt, i)
		}
		r.Tombstone = valLen < 0
		recs = append(recs, r)
	}
	return recs, nil
}
