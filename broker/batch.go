package broker

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Record batch v2 header layout (big-endian), as on the wire and on disk.
const (
	batchBaseOffset      = 0
	batchLength          = 8 // bytes after this field
	batchLeaderEpoch     = 12
	batchMagic           = 16
	batchCRC             = 17
	batchAttributes      = 21 // CRC covers from here to the end
	batchLastOffsetDelta = 23
	batchFirstTimestamp  = 27
	batchMaxTimestamp    = 35
	batchProducerID      = 43
	batchProducerEpoch   = 51
	batchBaseSequence    = 53
	batchNumRecords      = 57
	batchHeaderLen       = 61

	attrCompressionMask = 0x07
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchInfo is what validation learned about one produced batch.
type batchInfo struct {
	records       int32
	producerID    int64
	transactional bool
}

// batchError is a produce validation failure: the Kafka error and a message for the client.
type batchError struct {
	err *kerr.Error
	msg string
}

func badBatch(err *kerr.Error, format string, args ...any) *batchError {
	return &batchError{err: err, msg: fmt.Sprintf(format, args...)}
}

// validateProduceBatch checks the records of one partition of a produce request as Kafka's
// LogValidator does for magic v2: exactly one batch (produce v3+), magic 2, lengths
// consistent, CRC32C intact, not a control batch, record count matching LastOffsetDelta, size
// within max.message.bytes and, for uncompressed batches, records that tile the batch exactly
// with offset deltas 0..n-1. Compressed batches are kept as produced (never recompressed), so
// their inner records are not inspected.
func validateProduceBatch(b []byte, maxMessageBytes int64) (batchInfo, *batchError) {
	var info batchInfo
	if len(b) == 0 {
		return info, badBatch(kerr.InvalidRecord, "produce request has no record batch for the partition")
	}
	if len(b) < batchHeaderLen {
		return info, badBatch(kerr.CorruptMessage, "record batch of %d bytes is shorter than the %d-byte v2 header", len(b), batchHeaderLen)
	}
	if magic := int8(b[batchMagic]); magic != 2 {
		return info, badBatch(kerr.InvalidRecord, "produce v3+ requests may only contain record batches with magic 2, got magic %d", magic)
	}
	length := int64(int32(binary.BigEndian.Uint32(b[batchLength:])))
	if length < batchHeaderLen-12 || 12+length > int64(len(b)) {
		return info, badBatch(kerr.CorruptMessage, "record batch length %d does not fit the %d bytes sent", length, len(b))
	}
	if 12+length != int64(len(b)) {
		return info, badBatch(kerr.InvalidRecord, "produce v3+ requests may contain exactly one record batch per partition")
	}
	if int64(len(b)) > maxMessageBytes {
		return info, badBatch(kerr.MessageTooLarge, "record batch of %d bytes is larger than max.message.bytes=%d", len(b), maxMessageBytes)
	}
	if want, got := binary.BigEndian.Uint32(b[batchCRC:]), crc32.Checksum(b[batchAttributes:], castagnoli); want != got {
		return info, badBatch(kerr.CorruptMessage, "record batch CRC32C is %08x, computed %08x", want, got)
	}
	attrs := binary.BigEndian.Uint16(b[batchAttributes:])
	if attrs&attrControl != 0 {
		return info, badBatch(kerr.InvalidRecord, "clients may not produce control batches")
	}
	codec := attrs & attrCompressionMask
	if codec > 4 {
		return info, badBatch(kerr.UnsupportedCompressionType, "unknown compression codec %d", codec)
	}
	info.records = int32(binary.BigEndian.Uint32(b[batchNumRecords:]))
	lastDelta := int32(binary.BigEndian.Uint32(b[batchLastOffsetDelta:]))
	if info.records <= 0 || lastDelta != info.records-1 {
		return info, badBatch(kerr.InvalidRecord, "record batch says %d records but its last offset delta is %d", info.records, lastDelta)
	}
	info.producerID = int64(binary.BigEndian.Uint64(b[batchProducerID:]))
	info.transactional = attrs&attrTransactional != 0
	if codec == 0 {
		if err := validateRecords(b[batchHeaderLen:], info.records); err != nil {
			return info, err
		}
	}
	return info, nil
}

// validateRecords walks the uncompressed records of a batch: each is a varint length followed
// by that many bytes holding attributes, timestamp delta and an offset delta equal to its
// index.
func validateRecords(b []byte, n int32) *batchError {
	for i := int32(0); i < n; i++ {
		l, m := kbin.Varint(b)
		if m <= 0 || l < 3 || int(l) > len(b)-m {
			return badBatch(kerr.CorruptMessage, "record %d has a bad length", i)
		}
		rec := b[m : m+int(l)]
		b = b[m+int(l):]
		rec = rec[1:] // attributes
		if _, m := kbin.Varlong(rec); m <= 0 {
			return badBatch(kerr.CorruptMessage, "record %d has a bad timestamp delta", i)
		} else {
			rec = rec[m:]
		}
		delta, m := kbin.Varint(rec)
		if m <= 0 {
			return badBatch(kerr.CorruptMessage, "record %d has a bad offset delta", i)
		}
		if delta != i {
			return badBatch(kerr.InvalidRecord, "record %d has offset delta %d", i, delta)
		}
	}
	if len(b) != 0 {
		return badBatch(kerr.CorruptMessage, "record batch has %d bytes after its %d records", len(b), n)
	}
	return nil
}

// forgetProducer clears a validated batch's producer id, epoch and base sequence (to -1) and
// recomputes its CRC, for the skip-idempotence-window bug switch.
func forgetProducer(b []byte) {
	binary.BigEndian.PutUint64(b[batchProducerID:], ^uint64(0))
	binary.BigEndian.PutUint16(b[batchProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(b[batchBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttributes:], castagnoli))
}
