package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// HeaderSize is the size of the header at the start of every record value; it equals
// workloads.HeaderSize.
const HeaderSize = 32

// headerMagic marks a kchaos record value; its second byte is the header version.
var headerMagic = [2]byte{'K', 1}

// Header is what every record value starts with: enough to identify the record uniquely in
// the run and measure end-to-end latency from its intended send time.
//
// Layout (big endian): magic "K\x01" [2], reserved [2], RunID [8], ProducerID [4],
// Sequence [8], IntendedUnixNano [8].
type Header struct {
	RunID      uint64
	ProducerID uint32
	Sequence   uint64
	// IntendedUnixNano is the intended send time, wall clock, nanoseconds since the epoch.
	IntendedUnixNano int64
}

// errNotKchaos is returned by DecodeHeader for values without a kchaos header.
var errNotKchaos = errors.New("loadgen: value has no kchaos header")

// Put writes h into b[:HeaderSize].
func (h Header) Put(b []byte) {
	_ = b[HeaderSize-1]
	b[0], b[1], b[2], b[3] = headerMagic[0], headerMagic[1], 0, 0
	binary.BigEndian.PutUint64(b[4:], h.RunID)
	binary.BigEndian.PutUint32(b[12:], h.ProducerID)
	binary.BigEndian.PutUint64(b[16:], h.Sequence)
	binary.BigEndian.PutUint64(b[24:], uint64(h.IntendedUnixNano))
}

// DecodeHeader reads the header at the start of a record value.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize || b[0] != headerMagic[0] || b[1] != headerMagic[1] {
		return Header{}, errNotKchaos
	}
	return Header{
		RunID:            binary.BigEndian.Uint64(b[4:]),
		ProducerID:       binary.BigEndian.Uint32(b[12:]),
		Sequence:         binary.BigEndian.Uint64(b[16:]),
		IntendedUnixNano: int64(binary.BigEndian.Uint64(b[24:])),
	}, nil
}

// Value returns the history value of the record: "<producerID>-<sequence>".
func (h Header) Value() string {
	return string(h.AppendValue(make([]byte, 0, 24)))
}

// AppendValue appends the history value of the record (see Value) to b.
func (h Header) AppendValue(b []byte) []byte {
	b = strconv.AppendUint(b, uint64(h.ProducerID), 10)
	b = append(b, '-')
	return strconv.AppendUint(b, h.Sequence, 10)
}

// headerFlagOutput, in the first reserved header byte, marks the value of a transform output:
// the input record's value follows the output's own header.
const headerFlagOutput = 'T'

// OutputValue returns the value a transformer writes for one input record: out's header,
// flagged as an output, followed by the input value unchanged (so the input's header, and
// with it the input's history value, can be read back from the output).
func OutputValue(out Header, input []byte) []byte {
	b := make([]byte, HeaderSize+len(input))
	out.Put(b)
	b[2] = headerFlagOutput
	copy(b[HeaderSize:], input)
	return b
}

// HistoryValue decodes the header of a record value and returns it with the record's
// history value: "<producer>-<sequence>", or for a transform output
// "<input value>/<transformer>-<output sequence>" (see history.Event.Value).
func HistoryValue(b []byte) (Header, string, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return h, "", err
	}
	if b[2] != headerFlagOutput {
		return h, h.Value(), nil
	}
	in, err := DecodeHeader(b[HeaderSize:])
	if err != nil {
		return h, "", fmt.Errorf("loadgen: transform output without its input header: %w", err)
	}
	return h, in.Value() + "/" + h.Value(), nil
}
