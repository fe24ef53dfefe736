package history

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// bigHistory returns a history of n events spanning several decoding blocks.
func bigHistory(n int) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := 0; i < n; i++ {
		w.Write(&Event{Time: int64(i + 1), Process: i % 7, Type: OK, F: FPoll, Topic: "t", Partition: -1, Offset: -1,
			Records: []Record{{Partition: int32(i % 3), Offset: int64(i), Value: fmt.Sprintf("%d-%d", i%7, i)}}})
	}
	w.Close()
	// Blank lines are skipped by both readers.
	lines := bytes.Split(buf.Bytes(), []byte{'\n'})
	var out [][]byte
	for i, l := range lines {
		if i%1000 == 0 {
			out = append(out, nil)
		}
		out = append(out, l)
	}
	return bytes.Join(out, []byte{'\n'})
}

func TestBatchesMatchNext(t *testing.T) {
	data := bigHistory(40000)
	if len(data) < 2*blockSize {
		t.Fatalf("history of %d bytes does not span blocks", len(data))
	}
	var want []Event
	r := NewReader(bytes.NewReader(data), "h")
	for {
		var e Event
		if err := r.Next(&e); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	var got []Event
	br := NewReader(bytes.NewReader(data), "h")
	if err := br.Batches(3, func(evs []Event) error { got = append(got, evs...); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Batches delivered %d events, Next %d, or they differ", len(got), len(want))
	}
	if br.Line() != r.Line() {
		t.Errorf("Line after Batches %d, after Next %d", br.Line(), r.Line())
	}
}

func TestBatchesErrorNamesLine(t *testing.T) {
	data := bigHistory(30000)
	lines := bytes.Split(data, []byte{'\n'})
	lines[25000] = []byte(`{"i":1,"t":`) // line 25001
	data = bytes.Join(lines, []byte{'\n'})
	n := 0
	err := NewReader(bytes.NewReader(data), "run/history.jsonl").Batches(2, func(evs []Event) error { n += len(evs); return nil })
	if err == nil || !strings.Contains(err.Error(), "run/history.jsonl:25001:") {
		t.Fatalf("want error at run/history.jsonl:25001, got %v", err)
	}
	if n != 25000-25 { // lines before it, less the blank ones
		t.Errorf("delivered %d events before the error", n)
	}
	stop := errors.New("stop")
	if err := NewReader(bytes.NewReader(data), "h").Batches(2, func([]Event) error { return stop }); err != stop {
		t.Errorf("error from f: got %v", err)
	}
}

func TestBatchesAliasStrings(t *testing.T) {
	data := bigHistory(20000)
	var plain, aliased []Event
	NewReader(bytes.NewReader(data), "h").Batches(2, func(evs []Event) error { plain = append(plain, evs...); return nil })
	r := NewReader(bytes.NewReader(data), "h")
	r.AliasStrings()
	r.Batches(2, func(evs []Event) error { aliased = append(aliased, evs...); return nil })
	if !reflect.DeepEqual(plain, aliased) {
		t.Fatal("aliased strings decode differently")
	}
}
