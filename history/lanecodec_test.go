package history

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/kchaos/kchaos/internal/testkit"
)

// TestLaneCodecFormatsWhatTheEncoderDoes: an event kept in a lane's compact form (or its raw
// tail) comes out of the flusher as the very line encoding it directly gives, whatever the
// order of topics, types, functions and optional fields.
func TestLaneCodecFormatsWhatTheEncoderDoes(t *testing.T) {
	rng := testkit.Rand(t)
	strs := []string{"", "t", "t2", "3-17", "k<&>", "quote\"back\\slash", "ctl\x00\n", "utf8 é 世界", "bad\xffutf8", "sep\u2028", "long-" + string(bytes.Repeat([]byte("x"), 300))}
	types := []Type{Invoke, OK, Fail, Info, "odd"}
	fs := append(laneFs[:], "odd")
	pick := func() string { return strs[rng.IntN(len(strs))] }
	var enc laneEncoder
	var dec laneDecoder
	var events []*Event
	var buf []byte
	var ends []int
	for range 3000 {
		e := &Event{Process: rng.IntN(2000) - 2, Type: types[rng.IntN(len(types))], F: fs[rng.IntN(len(fs))],
			Partition: rng.Int32N(70000) - 1, Offset: rng.Int64N(1<<40) - 1}
		if rng.IntN(4) > 0 { // topics mostly repeat
			e.Topic = strs[rng.IntN(3)]
		} else {
			e.Topic = pick()
		}
		if rng.IntN(2) == 0 {
			e.Key = pick()
		}
		if rng.IntN(2) == 0 {
			e.Value = pick()
		}
		if rng.IntN(5) == 0 {
			e.Error = pick()
		}
		if rng.IntN(5) == 0 {
			e.TxnID = rng.Int64N(1<<33) - 5
		}
		switch rng.IntN(12) {
		case 0:
			e.Records = []Record{{1, 2, pick()}}
		case 1:
			e.Offsets = []PartitionOffset{{3, 4}}
		case 2:
			e.Txn = &Txn{Op: "commit"}
		case 3:
			e.Records = []Record{} // empty: omitted, and compact
		}
		var err error
		if buf, err = enc.append(buf, e); err != nil {
			t.Fatal(err)
		}
		events, ends = append(events, e), append(ends, len(buf))
	}
	start := 0
	compact := 0
	for i, e := range events {
		rec := buf[start:ends[i]]
		if rec[0] != laneRaw {
			compact++
		}
		got := dec.appendLine(nil, rec)
		want, err := appendRest(appendPrefix(nil, e), e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d (%+v):\n got %s\nwant %s", i, e, got, want)
		}
		start = ends[i]
	}
	if compact < len(events)/3 {
		t.Fatalf("only %d of %d events kept compact", compact, len(events))
	}
}

// TestLaneCopiesStrings: Write does not keep the event: a caller may reuse the memory of
// its strings (the load generator's values alias reused buffers) once Write returns.
func TestLaneCopiesStrings(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	l := w.NewLane()
	b := []byte("topic-a key-1 value-1")
	s := unsafe.String(&b[0], len(b))
	for range 3 {
		if err := l.Write(&Event{Process: 1, Type: OK, F: FSend, Topic: s[:7], Key: s[8:13], Value: s[14:], Partition: 2, Offset: 9}); err != nil {
			t.Fatal(err)
		}
		copy(b, "TOPIC-B KEY-2 VALUE-2")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(out.Bytes()), "history.jsonl")
	for i := range 3 {
		var e Event
		if err := r.Next(&e); err != nil {
			t.Fatal(err)
		}
		wantTopic, wantKey, wantValue := "topic-a", "key-1", "value-1"
		if i > 0 {
			wantTopic, wantKey, wantValue = "TOPIC-B", "KEY-2", "VALUE-2"
		}
		if e.Topic != wantTopic || e.Key != wantKey || e.Value != wantValue {
			t.Fatalf("line %d: topic %q key %q value %q, want %q %q %q", i, e.Topic, e.Key, e.Value, wantTopic, wantKey, wantValue)
		}
	}
}
