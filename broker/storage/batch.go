package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Record batch v2 header layout (big-endian), as on the wire and on disk.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57
	batchHeaderSize    = 61
	// logOverhead is BaseOffset + BatchLength: the bytes not counted by BatchLength.
	logOverhead = 12
	// maxBatchSize bounds one batch (Kafka's message.max.bytes is far below it); it keeps a
	// corrupt length from making recovery allocate gigabytes.
	maxBatchSize = 64 << 20

	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the part of a v2 batch header the log needs.
type batchHeader struct {
	BaseOffset      int64
	Length          int32 // BatchLength: bytes after the length field
	LeaderEpoch     int32
	Magic           int8
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// Size is the number of bytes the batch occupies in a segment.
func (h *batchHeader) Size() int64 { return logOverhead + int64(h.Length) }

// LastOffset is the offset of the batch's last record.
func (h *batchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// parseHeader decodes the fixed header at the start of b (len(b) >= batchHeaderSize).
func parseHeader(b []byte) batchHeader {
	return batchHeader{
		BaseOffset:      int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:          int32(binary.BigEndian.Uint32(b[offBatchLength:])),
		LeaderEpoch:     int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		Attributes:      int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:  int64(binary.BigEndian.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:      int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
}

// checkShape validates what can be checked from the header alone: magic, length bounds and
// delta sanity. avail is how many bytes are present from the batch start.
func (h *batchHeader) checkShape(avail int64) error {
	if h.Magic != 2 {
		return fmt.Errorf("%w: magic %d", ErrCorrupt, h.Magic)
	}
	if h.Length < batchHeaderSize-logOverhead || h.Length > maxBatchSize {
		return fmt.Errorf("%w: batch length %d", ErrCorrupt, h.Length)
	}
	if h.Size() > avail {
		return fmt.Errorf("%w: batch of %d bytes truncated to %d", ErrCorrupt, h.Size(), avail)
	}
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 || h.BaseOffset < 0 || h.BaseOffset > math.MaxInt64/2 {
		return fmt.Errorf("%w: offset delta, record count or base offset out of range", ErrCorrupt)
	}
	return nil
}

// batchCRC computes the CRC32C a batch should carry (over Attributes to the end).
func batchCRC(batch []byte) uint32 { return crc32.Checksum(batch[offAttributes:], castagnoli) }

// checkCRC verifies the stored CRC of a whole batch.
func checkCRC(batch []byte) error {
	if got, want := batchCRC(batch), binary.BigEndian.Uint32(batch[offCRC:]); got != want {
		return fmt.Errorf("%w: crc %08x, stored %08x", ErrCorrupt, got, want)
	}
	return nil
}

// walkBatches calls fn for each batch in concatenated batches after checking its shape (not
// its CRC: the broker verified it). It fails on trailing bytes.
func walkBatches(batches []byte, fn func(h batchHeader, b []byte) error) error {
	for p := 0; p < len(batches); {
		if len(batches)-p < batchHeaderSize {
			return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(batches)-p)
		}
		h := parseHeader(batches[p:])
		if err := h.checkShape(int64(len(batches) - p)); err != nil {
			return err
		}
		n := int(h.Size())
		if err := fn(h, batches[p:p+n]); err != nil {
			return err
		}
		p += n
	}
	return nil
}

// setBaseOffset rewrites BaseOffset in place; it is outside the CRC.
func setBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off)) }

// setLeaderEpoch rewrites PartitionLeaderEpoch in place; it is outside the CRC.
func setLeaderEpoch(b []byte, e int32) { binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e)) }

// setLogAppendTime marks the batch LogAppendTime with MaxTimestamp ts and recomputes the CRC.
func setLogAppendTime(b []byte, ts int64) {
	attr := binary.BigEndian.Uint16(b[offAttributes:])
	binary.BigEndian.PutUint16(b[offAttributes:], attr|attrLogAppendTime)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
}
