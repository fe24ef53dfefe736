package checker

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/kchaos/kchaos/history"
)

// TestSeries: ten acknowledged records, read by a consumer that falls behind and catches
// up, then a final drain. Unseen rises to ten and falls to zero; the consumer's realtime lag
// at its first poll is how long ago the offset after its highest read became known.
func TestSeries(t *testing.T) {
	const ms = int64(1e6)
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	i := int64(0)
	emit := func(at int64, e history.Event) {
		e.Index, e.Time = i, at
		i++
		w.Write(&e)
	}
	emit(0, history.Event{Process: history.ProcessObserver, Type: history.Info, F: history.FRun, Partition: -1, Offset: -1, Run: &history.Run{Version: history.Version, Acks: "all"}})
	var recs []history.Record
	for k := range 10 {
		v := fmt.Sprintf("1-%d", k)
		at := int64(k+1) * 100 * ms
		emit(at, history.Event{Process: 1, Type: history.Invoke, F: history.FSend, Topic: "t", Partition: -1, Key: fmt.Sprintf("k%d", k), Value: v, Offset: -1})
		emit(at+ms, history.Event{Process: 1, Type: history.OK, F: history.FSend, Topic: "t", Partition: 0, Key: fmt.Sprintf("k%d", k), Value: v, Offset: int64(k)})
		recs = append(recs, history.Record{Partition: 0, Offset: int64(k), Value: v})
	}
	poll := func(proc int, at int64, rs []history.Record) {
		emit(at-100*ms, history.Event{Process: proc, Type: history.Invoke, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1})
		emit(at, history.Event{Process: proc, Type: history.OK, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1, Records: rs})
	}
	poll(2, 2000*ms, recs[:5])
	poll(2, 3000*ms, recs[5:])
	emit(4000*ms, history.Event{Process: 20, Type: history.OK, F: history.FAssign, Topic: "t", Partition: -1, Offset: -1, Offsets: []history.PartitionOffset{{Partition: 0, Offset: 0}}})
	poll(20, 4500*ms, recs)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := Check(history.NewReader(&buf, "h"))
	if err != nil {
		t.Fatal(err)
	}
	s := res.Series
	unseen := s.UnseenByPartition["t/0"]
	if len(unseen) != len(s.Times) || slices.Max(unseen) != 10 || unseen[len(unseen)-1] != 0 {
		t.Fatalf("unseen t/0 %v at %v", unseen, s.Times)
	}
	var buckets int64
	for _, ser := range s.UnseenByKeyBucket {
		buckets += slices.Max(ser)
	}
	if len(s.UnseenByKeyBucket) != KeyBuckets || buckets != 10 {
		t.Errorf("key buckets %v", s.UnseenByKeyBucket)
	}
	lag := s.Lag["process 2"]
	if want := (1900 - 601) * ms; slices.Max(lag) != want {
		t.Errorf("lag %v, want a worst of %d (poll invoked at 1.9s, offset 5 known since 0.601s)", lag, want)
	}
	if _, ok := s.Lag["process 20"]; ok || s.DrainStart != 4000*ms || s.DrainEnd != 4500*ms {
		t.Errorf("drain [%d, %d], lag series %v: want the drain marked and left out of lag", s.DrainStart, s.DrainEnd, s.Lag)
	}
}
