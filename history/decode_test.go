package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// sampleEvents covers every field of the schema, including strings that need escaping.
func sampleEvents() []Event {
	return []Event{
		{Process: ProcessObserver, Type: Info, F: FRun, Partition: -1, Offset: -1, Run: &Run{Version: Version, RunID: "r1", Acks: "all", Params: map[string]string{"a": "<b>"}}},
		{Index: 1, Time: 5, Process: 3, Type: Invoke, F: FSend, Topic: "t", Partition: -1, Key: "k", Value: "3-1", Offset: -1},
		{Index: 2, Time: 9, Process: 3, Type: OK, F: FSend, Topic: "t", Partition: 2, Key: "k\u2028", Value: "3-2\n\t\b\f\x01\"\\é\xff", Offset: 41, TxnID: 7},
		{Index: 3, Time: 10, Process: 10, Type: OK, F: FPoll, Topic: "t", Partition: -1, Offset: -1, Records: []Record{{2, 41, "3-1"}, {2, 42, `"q"<>&`}}},
		{Index: 4, Time: 11, Process: 10, Type: OK, F: FCommit, Topic: "t", Partition: -1, Offset: -1, Offsets: []PartitionOffset{{2, 43}, {0, -1}}},
		{Index: 5, Time: 12, Process: 4, Type: Fail, F: FSend, Topic: "t", Partition: 1, Value: "4-1", Offset: -1, Error: "NOT_ENOUGH_REPLICAS"},
		{Index: 6, Time: 13, Process: ProcessNemesis, Type: Info, F: FFault, Partition: -1, Offset: -1, Fault: &Fault{ID: 1, Phase: "start", Kind: "kill", Nodes: []int32{1}}},
		{Index: 7, Time: 14, Process: ProcessObserver, Type: Info, F: FMeta, Topic: "t", Partition: 2, Offset: -1, ISR: &PartitionState{Leader: 1, ISR: []int32{1, 2}, MinInsyncReplicas: 2}},
		{Index: 8, Time: 15, Process: 5, Type: OK, F: FTxn, Partition: -1, Offset: -1, TxnID: 7, Txn: &Txn{Op: "commit", TransactionalID: "tx-5"}},
		{Index: 9, Time: 16, Process: 10, Type: OK, F: FAssign, Topic: "t", Partition: -1, Offset: -1, Offsets: []PartitionOffset{{0, -1}},
			Group: &Membership{ID: "t-sub-0", Generation: 3, Member: "kgo-1", Instance: "t-sub-0-0"}},
	}
}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	for i, e := range sampleEvents() {
		got, err := appendEvent(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&e); err != nil {
			t.Fatal(err)
		}
		if string(got) != want.String() {
			t.Errorf("event %d:\n got %s\nwant %s", i, got, want.String())
		}
	}
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for i, e := range sampleEvents() {
		line, _ := json.Marshal(&e)
		var want, got Event
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		var d decoder
		if err := d.decode(line, &got); err != nil {
			t.Fatalf("event %d: %v\n%s", i, err, line)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func TestDecodeSkipsUnknownFields(t *testing.T) {
	line := `{"i":3,"zz":{"a":[1,2.5e3,{"b":null}],"c":"\u00e9"},"t":7,"p":1,"type":"ok","f":"send","new":true,"value":"1-1","partition":0,"offset":5,"key":null}`
	var e Event
	var d decoder
	if err := d.decode([]byte(line), &e); err != nil {
		t.Fatal(err)
	}
	if e.Index != 3 || e.Time != 7 || e.Value != "1-1" || e.Offset != 5 || e.Type != OK || e.F != FSend {
		t.Fatalf("got %+v", e)
	}
}

func TestDecodeErrors(t *testing.T) {
	bad := []string{
		`{"i":1`, `{"i":1.5}`, `{"i":"x"}`, `{"i":99999999999999999999}`, `{"partition":3000000000}`,
		`{"records":[[1,2]]}`, `{"records":[[1,2,"a",4]]}`, `{"value":"a}`, `{"i":1} x`, `[1]`,
		`{"i":01}`, `{"x":tru}`, `{"x":[1,}`, `{"value":"a\q"}`, "{\"value\":\"a\x01\"}", `{"i":-}`,
		`{"run":[1]}`, `{"offsets":[[1,"a"]]}`, strings.Repeat("[", 2000),
		`{"x":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}`,
	}
	for _, s := range bad {
		var e Event
		var d decoder
		if err := d.decode([]byte(s), &e); err == nil {
			t.Errorf("%q: want error, got %+v", s, e)
		}
	}
}

func TestReaderErrorNamesLine(t *testing.T) {
	in := "{\"i\":0,\"t\":0,\"p\":1,\"type\":\"invoke\",\"f\":\"send\"}\n\n{\"i\":1,\"t\":x}\n"
	r := NewReader(strings.NewReader(in), "run/history.jsonl")
	var e Event
	if err := r.Next(&e); err != nil {
		t.Fatal(err)
	}
	err := r.Next(&e)
	if err == nil || !strings.Contains(err.Error(), "run/history.jsonl:3") {
		t.Fatalf("want error naming run/history.jsonl:3, got %v", err)
	}
}

func FuzzReader(f *testing.F) {
	for _, e := range sampleEvents() {
		line, _ := appendEvent(nil, &e)
		f.Add(line)
	}
	f.Add([]byte(`{"x":[{"y":"\ud800"}],"records":[[0,1,"\u0041"]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Batches (parallel, aliased strings) must deliver what Next does, and fail alike.
		var viaNext []Event
		var nextErr error
		defer func() {
			var viaBatches []Event
			br := NewReader(bytes.NewReader(data), "fuzz")
			br.AliasStrings()
			err := br.Batches(2, func(evs []Event) error { viaBatches = append(viaBatches, evs...); return nil })
			if fmt.Sprint(err) != fmt.Sprint(nextErr) || !reflect.DeepEqual(viaBatches, viaNext) {
				t.Fatalf("Batches: %d events, err %v; Next: %d events, err %v", len(viaBatches), err, len(viaNext), nextErr)
			}
		}()
		r := NewReader(bytes.NewReader(data), "fuzz")
		for {
			var e Event
			err := r.Next(&e)
			if err == io.EOF {
				return
			}
			if err != nil {
				nextErr = err
				if !strings.Contains(err.Error(), "fuzz:") {
					t.Fatalf("error does not name the file: %v", err)
				}
				return
			}
			viaNext = append(viaNext, e)
			// Whatever decodes must survive a round trip through the encoder.
			line, err := appendEvent(nil, &e)
			if err != nil {
				continue
			}
			var again Event
			var d decoder
			if err := d.decode(line, &again); err != nil {
				t.Fatalf("re-decode %s: %v", line, err)
			}
			line2, _ := appendEvent(nil, &again)
			if !bytes.Equal(line, line2) {
				t.Fatalf("round trip changed the event:\n%s\n%s", line, line2)
			}
		}
	})
}

func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := 0; i < 10000; i++ {
		w.Write(&Event{Time: 1, Process: 3, Type: OK, F: FSend, Topic: "t", Partition: 2, Key: "k7", Value: "3-17", Offset: int64(i)})
		w.Write(&Event{Time: 1, Process: 9, Type: OK, F: FPoll, Topic: "t", Partition: -1, Offset: -1, Records: []Record{{2, int64(i), "3-17"}, {2, int64(i + 1), "3-18"}}})
	}
	w.Close()
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		r := NewReader(bytes.NewReader(data), "bench")
		var e Event
		for r.Next(&e) == nil {
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*20000), "ns/event")
}

// TestFastPathMatchesGeneral: lines in the Writer's layout take the fast path and decode
// exactly as the general parser does.
func TestFastPathMatchesGeneral(t *testing.T) {
	events := []Event{
		{Index: 1, Time: 5, Process: 3, Type: Invoke, F: FSend, Topic: "t", Partition: -1, Key: "k", Value: "3-1", Offset: -1},
		{Index: 2, Time: 9, Process: 3, Type: OK, F: FSend, Topic: "t", Partition: 2, Value: "3-2", Offset: 41},
		{Index: 3, Time: 10, Process: 10, Type: OK, F: FPoll, Topic: "t", Partition: -1, Offset: -1, Records: []Record{{2, 41, "3-1"}, {2, 42, ""}, {1, 7, "x"}}},
		{Index: 4, Time: 11, Process: -2, Type: OK, F: FPoll, Topic: "u", Partition: -1, Offset: -1, Records: []Record{}},
		{Index: 5, Time: 12, Process: 4, Type: OK, F: FSend, Topic: "t", Partition: 0, Key: "k", Value: "4-1", Offset: 7, TxnID: 12345678901},
	}
	for i, e := range events {
		line, _ := appendEvent(nil, &e)
		line = line[:len(line)-1]
		var fast, general Event
		var d decoder
		if !d.decodeFast(line, &fast) {
			t.Fatalf("event %d: fast path refused %s", i, line)
		}
		d.b, d.pos = line, 0
		if err := json.Unmarshal(line, &general); err != nil {
			t.Fatal(err)
		}
		if len(general.Records) == 0 {
			general.Records = fast.Records // encoding/json leaves an omitted slice nil
		}
		if !reflect.DeepEqual(fast, general) {
			t.Errorf("event %d:\nfast    %+v\ngeneral %+v", i, fast, general)
		}
	}
}

// FuzzFastPath: whatever line the fast path accepts, the general decoder decodes to the same
// event, and a block of such lines parses in place to the same events as line by line.
func FuzzFastPath(f *testing.F) {
	for _, e := range sampleEvents() {
		line, _ := appendEvent(nil, &e)
		f.Add(line[:len(line)-1])
	}
	f.Add([]byte(`{"i":123456789012,"t":-9,"p":7,"type":"ok","f":"commit","offsets":[[1,99999999],[2,0]]}`))
	f.Add([]byte(`{"i":1,"t":2,"p":3,"type":"fail","f":"send","topic":"t","partition":0,"key":"k","value":"v","offset":-1,"error":"NOT_LEADER_OR_FOLLOWER"}`))
	f.Add([]byte(`{"i":1,"t":2,"p":3,"type":"ok","f":"send","topic":"t","partition":0,"key":"k","value":"v","offset":4,"txn_id":9}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast Event
		d := decoder{}
		if !d.decodeFast(line, &fast) {
			return
		}
		var general Event
		if err := d.decodeGeneral(line, &general); err != nil {
			t.Fatalf("fast path accepted what the general decoder refuses (%v): %s", err, line)
		}
		if !reflect.DeepEqual(fast, general) {
			t.Fatalf("%s\nfast    %+v\ngeneral %+v", line, fast, general)
		}
		var viaBlock Event
		block := append(append([]byte{}, line...), '\n')
		n, ok := d.fastPrefix(block, &viaBlock)
		if !ok || n != len(line) || !reflect.DeepEqual(viaBlock, fast) {
			t.Fatalf("in a block: ok %v, length %d of %d, %+v", ok, n, len(line), viaBlock)
		}
	})
}

// TestSwarInt: integers of every length, across word boundaries and at the end of the input,
// parse as strconv does; what JSON or the fast path does not allow is refused.
func TestSwarInt(t *testing.T) {
	for digits := 1; digits <= 18; digits++ {
		for _, neg := range []bool{false, true} {
			for pad := 0; pad < 10; pad++ {
				num := strings.Repeat("9876543210", 2)[:digits]
				if neg {
					num = "-" + num
				}
				want, _ := strconv.ParseInt(num, 10, 64)
				for _, tail := range []string{"", ",", "}", strings.Repeat("x", pad)} {
					b := []byte(num + tail)
					v, i, ok := swarInt(b, 0)
					if !ok || v != want || i != len(num) {
						t.Fatalf("%q: got %d, %d, %v; want %d, %d", b, v, i, ok, want, len(num))
					}
				}
			}
		}
	}
	for _, bad := range []string{"", "-", "x", "01", "-01", "00,", "1234567890123456789", "12345678901234567890123,"} {
		if v, _, ok := swarInt([]byte(bad), 0); ok {
			t.Errorf("%q: accepted as %d", bad, v)
		}
	}
	for _, good := range []string{"0", "-0", "0,", "10000000", "100000000,aaaaaaaa"} {
		if _, _, ok := swarInt([]byte(good), 0); !ok {
			t.Errorf("%q: refused", good)
		}
	}
}
