package loadgen

import (
	"bytes"
	"testing"
)

// TestOutputValueRoundTrip: a transform output carries its own header and its input's value,
// and its history value names both; a producer's record keeps its plain history value.
func TestOutputValueRoundTrip(t *testing.T) {
	in := make([]byte, 64)
	Header{RunID: 9, ProducerID: 3, Sequence: 17, IntendedUnixNano: 1234}.Put(in)
	copy(in[HeaderSize:], "payload")
	h, v, err := HistoryValue(in)
	if err != nil || v != "3-17" || h.IntendedUnixNano != 1234 {
		t.Fatalf("input: %+v %q %v", h, v, err)
	}
	out := OutputValue(Header{RunID: 9, ProducerID: 12, Sequence: 5, IntendedUnixNano: 1234}, in)
	h, v, err = HistoryValue(out)
	if err != nil || v != "3-17/12-5" || h.ProducerID != 12 || h.Sequence != 5 || h.RunID != 9 {
		t.Fatalf("output: %+v %q %v", h, v, err)
	}
	if !bytes.Equal(out[HeaderSize:], in) {
		t.Error("output does not carry the input value unchanged")
	}
	if _, _, err := HistoryValue(out[:HeaderSize+8]); err == nil {
		t.Error("an output cut inside its input header decoded")
	}
	if _, _, err := HistoryValue([]byte("not a kchaos value at all, no...")); err == nil {
		t.Error("a foreign value decoded")
	}
}
