package history

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/kchaos/kchaos/internal/testkit"
)

// appendEvent appends e as one whole line, as the Writer writes it.
func appendEvent(b []byte, e *Event) ([]byte, error) {
	return appendRest(appendPrefix(appendHead(b, e.Index, e.Time), e), e)
}

// appendHead appends the start of a line, index and time, formatted directly.
func appendHead(b []byte, index, time int64) []byte {
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, index, 10)
	b = append(b, `,"t":`...)
	return strconv.AppendInt(b, time, 10)
}

func reflectEncode(t *testing.T, e *Event) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "t", "3-17", "k<&>", "quote\"back\\slash", "ctl\x00\x01\x1f\n\r\t\b\f", "utf8 é 世界", "bad\xff\xfeutf8", "sep\u2028\u2029", "\x7f"}
	events := []*Event{
		{Index: 0, Time: 0, Process: -2, Type: Info, F: FRun, Partition: -1, Offset: -1, Run: &Run{Version: 1, RunID: "r<1>", Acks: "all", Topics: []string{"a"}, Params: map[string]string{"b": "2", "a": "1&"}}},
		{Index: 1, Time: 1200, Process: 3, Type: Invoke, F: FSend, Topic: "t", Partition: -1, Key: "k7", Value: "3-17", Offset: -1},
		{Index: 3, Time: 9000, Process: 10, Type: OK, F: FPoll, Topic: "t", Partition: -1, Offset: -1, Records: []Record{{2, 41, "3-17"}, {2, 42, ""}}},
		{Index: 4, Time: 9100, Process: 10, Type: OK, F: FCommit, Topic: "t", Offsets: []PartitionOffset{{2, 42}, {0, 1}}},
		{Index: 5, Process: -1, Type: Info, F: FFault, Fault: &Fault{ID: 1, Phase: "start", Kind: "kill", Nodes: []int32{1}}},
		{Index: 6, Process: -2, Type: Info, F: FMeta, ISR: &PartitionState{Leader: 1, ISR: []int32{1, 2}}, TxnID: 9, Txn: &Txn{Op: "begin"}},
		{Records: []Record{}, Offsets: []PartitionOffset{}},
	}
	rng := testkit.Rand(t)
	pick := func() string { return strs[rng.IntN(len(strs))] }
	for range 500 {
		events = append(events, &Event{Index: rng.Int64(), Time: rng.Int64N(1e12), Process: rng.IntN(20) - 2, Type: Type(pick()), F: F(pick()),
			Topic: pick(), Partition: rng.Int32N(10) - 1, Key: pick(), Value: pick(), Offset: rng.Int64N(100) - 1, Error: pick(),
			Records: []Record{{rng.Int32N(3), rng.Int64N(9), "7-12"}}, TxnID: rng.Int64N(2)})
	}
	for i, e := range events {
		got, err := appendEvent(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		got = bytes.TrimSuffix(got, []byte("\n"))
		if want := reflectEncode(t, e); !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// BenchmarkEncodeSend compares encoding a send event by hand and with reflection.
func BenchmarkEncodeSend(b *testing.B) {
	e := &Event{Index: 123456, Time: 987654321, Process: 3, Type: OK, F: FSend, Topic: "bench-1234abcd-0", Partition: 2, Key: "k7", Value: "3-17123", Offset: 41}
	b.Run("encoder=append", func(b *testing.B) {
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = appendEvent(buf[:0], e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoder=reflect", func(b *testing.B) {
		var buf bytes.Buffer
		je := json.NewEncoder(&buf)
		je.SetEscapeHTML(false)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := je.Encode(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAppendStringMatchesEncodingJSON: the word-at-a-time plain-prefix scan never lets a byte
// through unescaped that encoding/json would escape, wherever it sits in a word.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	const seed = 5
	t.Logf("seed: %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	specials := []byte{0, 0x1f, 0x20, '"', '\\', 0x7f, 0x80, 0xff, '<', '&', 'a', '~'}
	for n := range 5000 {
		s := make([]byte, rng.IntN(40))
		for i := range s {
			s[i] = byte('a' + rng.IntN(26))
		}
		if len(s) > 0 && n%2 == 0 {
			s[rng.IntN(len(s))] = specials[rng.IntN(len(specials))]
		}
		str := strings.ToValidUTF8(string(s), "?")
		want, err := json.Marshal(str)
		if err != nil {
			t.Fatal(err)
		}
		var dec string
		if err := json.Unmarshal(appendString(nil, str), &dec); err != nil || dec != str {
			t.Fatalf("%q: encoded %s, decodes to %q (%v); encoding/json: %s", str, appendString(nil, str), dec, err, want)
		}
	}
}

// BenchmarkWriterWrite measures Writer.Write of a send event (encoding, stamping, copying and
// the background write to io.Discard), from one goroutine and from two at once.
func BenchmarkWriterWrite(b *testing.B) {
	ev := Event{Process: 3, Type: OK, F: FSend, Topic: "bench-1234abcd-0", Partition: 2, Value: "3-17123", Offset: 41}
	b.Run("goroutines=1", func(b *testing.B) {
		w := NewWriter(io.Discard)
		defer w.Close()
		b.ReportAllocs()
		for b.Loop() {
			e := ev
			if err := w.Write(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goroutines=2", func(b *testing.B) {
		w := NewWriter(io.Discard)
		defer w.Close()
		b.ReportAllocs()
		b.SetParallelism(1)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e := ev
				if err := w.Write(&e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
