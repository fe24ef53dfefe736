package history

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	in := []Event{
		{Process: ProcessObserver, Type: Info, F: FRun, Partition: -1, Offset: -1, Run: &Run{Version: Version, RunID: "r1", Acks: "all"}},
		{Process: 3, Type: Invoke, F: FSend, Topic: "t", Partition: -1, Key: "k", Value: "3-1", Offset: -1},
		{Process: 3, Type: OK, F: FSend, Topic: "t", Partition: 2, Key: "k", Value: "3-1", Offset: 41},
		{Process: 10, Type: OK, F: FPoll, Topic: "t", Partition: -1, Offset: -1, Records: []Record{{2, 41, "3-1"}, {2, 42, `"quoted"`}}},
		{Process: 10, Type: OK, F: FCommit, Topic: "t", Partition: -1, Offset: -1, Offsets: []PartitionOffset{{2, 43}}},
	}
	for i := range in {
		if err := w.Write(&in[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"records":[[2,41,"3-1"],[2,42,"\"quoted\""]]`) {
		t.Fatalf("records not encoded as arrays:\n%s", buf.String())
	}
	r := NewReader(&buf, "h.jsonl")
	for i := range in {
		var e Event
		if err := r.Next(&e); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if e.Index != int64(i) || e.F != in[i].F || e.Value != in[i].Value || e.Offset != in[i].Offset || len(e.Records) != len(in[i].Records) {
			t.Fatalf("event %d: got %+v want %+v", i, e, in[i])
		}
	}
	var e Event
	if err := r.Next(&e); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestReaderTornLine(t *testing.T) {
	r := NewReader(strings.NewReader("{\"i\":0,\"t\":0,\"p\":1,\"type\":\"invoke\",\"f\":\"send\"}\n{\"i\":1,\"t\""), "h.jsonl")
	var e Event
	if err := r.Next(&e); err != nil {
		t.Fatal(err)
	}
	err := r.Next(&e)
	if err == nil || !strings.Contains(err.Error(), "h.jsonl:2") {
		t.Fatalf("want error naming h.jsonl:2, got %v", err)
	}
}
