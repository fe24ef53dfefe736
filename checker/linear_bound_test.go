package checker

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/history"
)

// TestLinearTooManyIndeterminate: an acks=0 style partition whose sends are all indeterminate
// is reported unknown at once, instead of a search that grows without bound.
func TestLinearTooManyIndeterminate(t *testing.T) {
	var buf bytes.Buffer
	w := history.NewWriter(&buf)
	w.Write(&history.Event{Process: history.ProcessObserver, Type: history.Info, F: history.FRun, Partition: -1, Offset: -1, Run: &history.Run{Version: history.Version, Acks: "0"}})
	n := MaxIndeterminateSends + 10
	var recs []history.Record
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("0-%d", i)
		w.Write(&history.Event{Process: 0, Type: history.Invoke, F: history.FSend, Topic: "t", Partition: 0, Value: v, Offset: -1})
		w.Write(&history.Event{Process: 0, Type: history.Info, F: history.FSend, Topic: "t", Partition: 0, Value: v, Offset: -1, Error: "NO_ACKS"})
		recs = append(recs, history.Record{Partition: 0, Offset: int64(i), Value: v})
	}
	w.Write(&history.Event{Process: 1, Type: history.Invoke, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1})
	w.Write(&history.Event{Process: 1, Type: history.OK, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1, Records: recs})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := CheckLinearizable(history.NewReader(&buf, "h"), LinearOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Partitions) != 1 || res.Partitions[0].Result != LinearUnknown || !strings.Contains(res.Partitions[0].Reason, "indeterminate") {
		t.Fatalf("want one unknown partition with a reason, got %+v", res.Partitions)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}
