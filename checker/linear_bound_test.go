package checker

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/history"
)

// linHistory builds a history in memory for the porcupine tests.
type linHistory struct {
	buf bytes.Buffer
	w   *history.Writer
	t   int64
}

func newLinHistory(acks string) *linHistory {
	h := &linHistory{}
	h.w = history.NewWriter(&h.buf)
	h.emit(history.Event{Process: history.ProcessObserver, Type: history.Info, F: history.FRun, Partition: -1, Offset: -1, Run: &history.Run{Version: history.Version, Acks: acks}})
	return h
}

func (h *linHistory) emit(e history.Event) {
	h.t += 10
	e.Time = h.t
	h.w.Write(&e)
}

func (h *linHistory) invoke(proc int, v string) {
	h.emit(history.Event{Process: proc, Type: history.Invoke, F: history.FSend, Topic: "t", Partition: -1, Value: v, Offset: -1})
}

func (h *linHistory) ack(proc int, v string, typ history.Type, off int64) {
	h.emit(history.Event{Process: proc, Type: typ, F: history.FSend, Topic: "t", Partition: 0, Value: v, Offset: off})
}

func (h *linHistory) poll(proc int, recs []history.Record) {
	h.emit(history.Event{Process: proc, Type: history.Invoke, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1})
	h.emit(history.Event{Process: proc, Type: history.OK, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1, Records: recs})
}

func (h *linHistory) check(t *testing.T, opts LinearOptions) *LinearResult {
	t.Helper()
	if err := h.w.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := CheckLinearizable(history.NewReader(&h.buf, "h"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Partitions) != 1 {
		t.Fatalf("want one partition, got %+v", res.Partitions)
	}
	return res
}

// TestLinearIndeterminateSendsPinned: an acks=0 partition whose 20,000 sends are all
// indeterminate, read back by a consumer, is decided ok at once: each send read is pinned to
// the offset it was read at and must take effect before that read returned.
func TestLinearIndeterminateSendsPinned(t *testing.T) {
	h := newLinHistory("0")
	const n = 20000
	var recs []history.Record
	for i := range n {
		v := fmt.Sprintf("0-%d", i)
		h.invoke(0, v)
		h.ack(0, v, history.OK, -1) // acks=0: no offset
		recs = append(recs, history.Record{Partition: 0, Offset: int64(i), Value: v})
		if len(recs) == 100 {
			h.poll(1, recs)
			recs = nil
		}
	}
	start := time.Now()
	res := h.check(t, LinearOptions{})
	p := res.Partitions[0]
	if p.Result != LinearOK || p.Windows < n/1000 {
		t.Fatalf("want ok over about %d windows, got %+v", n/1000, p)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
}

// TestLinearPipelinedPartition: 200 producers with sends in flight all the time, landing in
// an order that is not their invoke order, and completing out of order; the old model
// (any offset ≥ the tail) searched every interleaving of them. The seed is printed.
func TestLinearPipelinedPartition(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed: %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	h := newLinHistory("all")
	const procs, n = 200, 50000
	type inflight struct {
		proc int
		v    string
		off  int64
	}
	var pending []inflight
	var next int64
	var unread []history.Record
	for i := range n {
		p := i % procs
		v := fmt.Sprintf("%d-%d", p, i/procs)
		h.invoke(p, v)
		pending = append(pending, inflight{proc: p, v: v, off: -1})
		// The broker appends a random one of the pending sends; a random appended one
		// completes.
		for len(pending) > procs/2 {
			j := rng.IntN(len(pending))
			if pending[j].off < 0 {
				pending[j].off = next
				unread = append(unread, history.Record{Partition: 0, Offset: next, Value: pending[j].v})
				next++
				continue
			}
			h.ack(pending[j].proc, pending[j].v, history.OK, pending[j].off)
			pending = append(pending[:j], pending[j+1:]...)
		}
		if len(unread) >= 50 {
			h.poll(1000, unread)
			unread = nil
		}
	}
	start := time.Now()
	res := h.check(t, LinearOptions{Timeout: 60 * time.Second})
	if p := res.Partitions[0]; p.Result != LinearOK || p.Windows < 2 {
		t.Fatalf("want ok over several windows, got %+v", p)
	}
	t.Logf("%d operations in %d windows: %s", res.Partitions[0].Ops, res.Partitions[0].Windows, time.Since(start))
}

// TestLinearForcedCutKeepsOrder: with no free cut (every send invoked before the one below
// it), a window ends anyway after 4×WindowSends sends, and a send that returned before a send
// at a lower offset in the window below was invoked is still caught.
func TestLinearForcedCutKeepsOrder(t *testing.T) {
	h := newLinHistory("all")
	for i := 1; i <= 4; i++ {
		h.invoke(i, fmt.Sprintf("%d-0", i))
	}
	h.ack(4, "4-0", history.OK, 4) // returns before 0-0, at offset 0, is invoked
	h.invoke(0, "0-0")
	h.ack(0, "0-0", history.OK, 0)
	for i := 1; i <= 3; i++ {
		h.ack(i, fmt.Sprintf("%d-0", i), history.OK, int64(i))
	}
	res := h.check(t, LinearOptions{WindowSends: 1})
	if p := res.Partitions[0]; p.Result != LinearIllegal || p.Windows != 2 || !strings.Contains(p.Reason, "before a send at a lower offset") {
		t.Fatalf("want illegal across a forced cut, got %+v", p)
	}
}

// TestLinearBudget: a partition whose budget runs out is unknown, with the reason.
func TestLinearBudget(t *testing.T) {
	h := newLinHistory("all")
	for i := range 100 {
		v := fmt.Sprintf("0-%d", i)
		h.invoke(0, v)
		h.ack(0, v, history.OK, int64(i))
	}
	res := h.check(t, LinearOptions{Timeout: time.Nanosecond, WindowSends: 10})
	if p := res.Partitions[0]; p.Result != LinearUnknown || !strings.Contains(p.Reason, "budget") || len(p.Offsets) != 2 {
		t.Fatalf("want unknown with a budget reason, got %+v", p)
	}
	h = newLinHistory("all")
	h.invoke(0, "0-0")
	h.ack(0, "0-0", history.OK, 0)
	res = h.check(t, LinearOptions{MemoryBudget: 1})
	if p := res.Partitions[0]; p.Result != LinearUnknown || !strings.Contains(p.Reason, "live heap") {
		t.Fatalf("want unknown with a memory reason, got %+v", p)
	}
}

// TestLinearHeapGuardStopsOneSearch: a window whose search grows without bound — 40 polls
// concurrent with everything, which porcupine orders in every one of their 2^40 subsets before
// it gives up on a poll no order allows — is stopped by the heap guard long before its time
// budget and its partition ends unknown with the reason, while an ordinary partition checked
// beside it ends ok; the process stays under 2 GiB.
func TestLinearHeapGuardStopsOneSearch(t *testing.T) {
	resetPeakRSS(t)
	h := newLinHistory("all")
	send := func(typ history.Type, p int32, v string, off int64) {
		h.emit(history.Event{Process: int(p), Type: typ, F: history.FSend, Topic: "t", Partition: p, Value: v, Offset: off})
	}
	for i := range 50 { // partition 1: ordinary
		v := fmt.Sprintf("1-%d", i)
		send(history.Invoke, 1, v, -1)
		send(history.OK, 1, v, int64(i))
	}
	h.poll(500, []history.Record{{Partition: 1, Offset: 0, Value: "1-0"}, {Partition: 1, Offset: 1, Value: "1-1"}})
	const polls = 40
	send(history.Invoke, 0, "0-0", -1)
	for p := range polls + 1 {
		h.emit(history.Event{Process: 100 + p, Type: history.Invoke, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1})
	}
	send(history.OK, 0, "0-0", 0)
	for p := range polls + 1 {
		v := "0-0"
		if p == polls {
			v = "never-sent"
		}
		h.emit(history.Event{Process: 100 + p, Type: history.OK, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1,
			Records: []history.Record{{Partition: 0, Offset: 0, Value: v}}})
	}
	// Later sends in the same window make each state porcupine keeps larger (a bitset over
	// every operation of the window), so the budget fills sooner.
	for i := 1; i <= 2000; i++ {
		v := fmt.Sprintf("0-%d", i)
		send(history.Invoke, 0, v, -1)
		send(history.OK, 0, v, int64(i))
	}
	if err := h.w.Close(); err != nil {
		t.Fatal(err)
	}
	const budget = 64 << 20
	start := time.Now()
	res, err := CheckLinearizable(history.NewReader(&h.buf, "h"), LinearOptions{Timeout: 5 * time.Minute, MemoryBudget: budget, WindowSends: 5000})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(res.Partitions) != 2 {
		t.Fatalf("want two partitions, got %+v", res.Partitions)
	}
	bad, good := res.Partitions[0], res.Partitions[1]
	if bad.Result != LinearUnknown || !strings.Contains(bad.Reason, "search was stopped") || good.Result != LinearOK {
		t.Fatalf("want t/0 unknown (search stopped) and t/1 ok, got %+v", res.Partitions)
	}
	rss := peakRSS()
	t.Logf("%s in %s; peak RSS %d MiB", bad.Reason, took.Round(time.Millisecond), rss>>20)
	if took > 2*time.Minute || rss > 2<<30 {
		t.Fatalf("took %s with a peak RSS of %d MiB, want the search stopped by the heap budget under 2 GiB", took, rss>>20)
	}
}

// resetPeakRSS resets the process's peak resident set size (VmHWM), so peakRSS measures what
// follows; where the kernel refuses, peakRSS keeps the whole process's peak, a stricter bound.
func resetPeakRSS(t *testing.T) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Logf("peak RSS not reset (%v): measuring the whole test process", err)
	}
}

// TestLinearTwoSendsAtOneOffset: a batch of 100 records acknowledged at offsets that another
// batch, concurrent with it, also took (a broker or proxy that acknowledged records it never
// wrote) is illegal at once, where a search would try both orders of each of the 100 pairs;
// the visualisation shows the two sends of the first shared offset and what was read there.
func TestLinearTwoSendsAtOneOffset(t *testing.T) {
	h := newLinHistory("all")
	const n = 100
	var recs []history.Record
	for i := range n {
		h.invoke(1, fmt.Sprintf("1-%d", i))
		h.invoke(2, fmt.Sprintf("2-%d", i))
	}
	for i := range n {
		h.ack(1, fmt.Sprintf("1-%d", i), history.OK, int64(i)) // never written
	}
	for i := range n {
		h.ack(2, fmt.Sprintf("2-%d", i), history.OK, int64(i))
		recs = append(recs, history.Record{Partition: 0, Offset: int64(i), Value: fmt.Sprintf("2-%d", i)})
	}
	h.poll(3, recs)
	dir := t.TempDir()
	start := time.Now()
	res := h.check(t, LinearOptions{Timeout: time.Minute, OutDir: dir})
	p := res.Partitions[0]
	if p.Result != LinearIllegal || !strings.Contains(p.Reason, `offset 0 was written by two sends, "1-0" and "2-0"`) {
		t.Fatalf("want illegal for two sends at offset 0, got %+v", p)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
	html, err := os.ReadFile(p.Visualization)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"send(1-0)", "send(2-0)", "0:2-0"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("visualisation lacks %q", want)
		}
	}
}
