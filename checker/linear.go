package checker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kchaos/kchaos/history"
)

// Porcupine verdicts.
const (
	LinearOK      = "ok"
	LinearIllegal = "illegal"
	LinearUnknown = "unknown"
)

// LinearOptions configure the porcupine check.
type LinearOptions struct {
	// Timeout is the time budget of one partition, shared by its windows; default 30s. A
	// partition that runs out of time is unknown, with the window that did.
	Timeout time.Duration
	// WindowSends bounds the sends of one window, the unit porcupine searches; default 1000.
	// A window ends at the first offset past this many sends whose send was invoked after
	// every send below it, so the windows are independent (see linWindow); at 4×WindowSends
	// it ends regardless, carrying the earliest time its first send can take effect.
	WindowSends int
	// MemoryBudget bounds the Go heap while windows are searched, in bytes; default 1 GiB.
	// When the heap passes it during a search and the live heap, after a collection, is still
	// above three quarters of it, the search with the most steps is stopped (see heapGuard)
	// and its window is unknown; so is a window that would start in that state. Either way
	// the partition's later windows are left unsearched.
	MemoryBudget uint64
	// Parallel is how many partitions are checked at once; default GOMAXPROCS.
	Parallel int
	// OutDir receives one HTML visualisation per illegal partition (of its first illegal
	// window), annotated with the fault windows; empty writes none.
	OutDir string
}

func (o *LinearOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.WindowSends <= 0 {
		o.WindowSends = 1000
	}
	if o.MemoryBudget == 0 {
		o.MemoryBudget = 1 << 30
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.GOMAXPROCS(0)
	}
}

// LinearResult is the porcupine verdict over every partition of a history.
type LinearResult struct {
	// Result is ok when every partition is linearizable, illegal when one is not, else
	// unknown (a partition ran out of its budget).
	Result     string            `json:"result"`
	Partitions []LinearPartition `json:"partitions"`
	// Illegal and Unknown name the partitions ("topic/partition") with those verdicts.
	Illegal []string `json:"illegal,omitempty"`
	Unknown []string `json:"unknown,omitempty"`
	// Elapsed is the wall time of the whole check, in nanoseconds.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// LinearPartition is porcupine's verdict on one partition.
type LinearPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Ops counts the operations checked: sends, and polls once per window they read from.
	Ops int `json:"ops"`
	// Windows is how many independent searches the partition was split into.
	Windows int           `json:"windows"`
	Result  string        `json:"result"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Offsets are the first and last offset of the window that decided an illegal or unknown
	// verdict.
	Offsets []int64 `json:"offsets,omitempty"`
	// Visualization is the path of the HTML visualisation, for an illegal partition.
	Visualization string `json:"visualization,omitempty"`
	// Reason says why a partition is illegal or unknown.
	Reason string `json:"reason,omitempty"`
}

// CheckLinearizableFile runs the porcupine check on the history at path.
func CheckLinearizableFile(path string, opts LinearOptions) (*LinearResult, error) {
	f, err := history.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("checker: %w", err)
	}
	defer f.Close()
	return CheckLinearizable(history.NewReader(f, path), opts)
}

// linSend is a send placed at an offset: acknowledged there, or an indeterminate send pinned
// to the first offset a read saw it at.
type linSend struct {
	off       int64
	value     int32
	client    int32
	call, ret int64
}

// linPoll is the part of one poll that read one partition.
type linPoll struct {
	call, ret int64
	client    int32
	recs      []linRec
}

type linRec struct {
	off   int64
	value int32
}

// partOps are the operations of one partition.
type partOps struct {
	key   tpKey
	sends []linSend
	polls []linPoll
}

// linCollector turns a history into per-partition operations (see logModel).
type linCollector struct {
	ids     map[string]int32
	names   []string
	parts   map[tpKey]*partOps
	order   []tpKey
	invokes map[int32]int64 // send value id → invoke time
	infos   map[int32]int64 // indeterminate send value id → invoke time
	senders map[int32]int   // value id → process
	firstAt map[int32]tpOff // value id → where it was first read, and that read's return
	// again holds, for values read at more than one place, the first read at each other place.
	again map[int32][]tpOff
	// span is each completed send's invoke and completion, by value id; acked where its
	// acknowledgement placed it.
	span     [][2]int64
	acked    []ackAt
	polls    map[int]int64 // process → invoke time of its pending poll
	faults   []FaultWindow
	open     map[int64]int
	end      int64
	procBase map[tpKey]map[int]int32
}

type ackAt struct {
	p   *partOps
	off int64
}

type tpOff struct {
	key tpKey
	off int64
	ret int64
}

func (l *linCollector) id(v string) int32 {
	if id, ok := l.ids[v]; ok {
		return id
	}
	id := int32(len(l.names))
	v = strings.Clone(v)
	l.ids[v] = id
	l.names = append(l.names, v)
	return id
}

func (l *linCollector) part(k tpKey) *partOps {
	p := l.parts[k]
	if p == nil {
		p = &partOps{key: k}
		l.parts[k] = p
		l.order = append(l.order, k)
	}
	return p
}

// client maps a process to a dense client id per partition, as the visualisation wants.
func (l *linCollector) client(k tpKey, proc int) int32 {
	m := l.procBase[k]
	if m == nil {
		m = make(map[int]int32)
		l.procBase[k] = m
	}
	c, ok := m[proc]
	if !ok {
		c = int32(len(m))
		m[proc] = c
	}
	return c
}

func (l *linCollector) event(e *history.Event) {
	l.end = max(l.end, e.Time)
	switch e.F {
	case history.FSend:
		l.send(e)
	case history.FPoll:
		switch e.Type {
		case history.Invoke:
			l.polls[e.Process] = e.Time
		case history.OK:
			call, ok := l.polls[e.Process]
			if !ok {
				call = e.Time
			}
			delete(l.polls, e.Process)
			l.pollOps(e, call)
		default:
			delete(l.polls, e.Process)
		}
	case history.FFault:
		if e.Fault == nil {
			return
		}
		switch e.Fault.Phase {
		case "start":
			l.open[e.Fault.ID] = len(l.faults)
			l.faults = append(l.faults, FaultWindow{ID: e.Fault.ID, Kind: e.Fault.Kind, Target: e.Fault.Target, Nodes: e.Fault.Nodes, Start: e.Time, End: -1, Open: true})
		case "end":
			if i, ok := l.open[e.Fault.ID]; ok {
				l.faults[i].End, l.faults[i].Open = e.Time, false
				delete(l.open, e.Fault.ID)
			}
		}
	}
}

func (l *linCollector) send(e *history.Event) {
	if e.Value == "" {
		return
	}
	id := l.id(e.Value)
	if e.Type == history.Invoke {
		l.invokes[id] = e.Time
		l.senders[id] = e.Process
		return
	}
	call, ok := l.invokes[id]
	if !ok {
		call = e.Time
		l.senders[id] = e.Process
	}
	delete(l.invokes, id)
	for int(id) >= len(l.span) {
		l.span = append(l.span, [2]int64{-1, -1})
	}
	l.span[id] = [2]int64{call, e.Time}
	switch {
	case e.Type == history.OK && e.Offset >= 0:
		k := tpKey{e.Topic, e.Partition}
		p := l.part(k)
		for int(id) >= len(l.acked) {
			l.acked = append(l.acked, ackAt{})
		}
		l.acked[id] = ackAt{p, e.Offset}
		p.sends = append(p.sends, linSend{off: e.Offset, value: id, client: l.client(k, e.Process), call: call, ret: e.Time})
	case e.Type == history.OK, e.Type == history.Info,
		e.Type == history.Fail && e.Error == "NOT_ENOUGH_REPLICAS_AFTER_APPEND":
		// Indeterminate: the write may or may not have taken effect, and when. An acks=0
		// acknowledgement carries no offset and only says the client sent the record.
		l.infos[id] = call
	}
}

// pollOps splits one poll into one op per partition it returned records from.
func (l *linCollector) pollOps(e *history.Event, call int64) {
	var byPart map[int32][]linRec
	for _, r := range e.Records {
		id := l.id(r.Value)
		k := tpKey{e.Topic, r.Partition}
		if at, ok := l.firstAt[id]; !ok {
			l.firstAt[id] = tpOff{k, r.Offset, e.Time}
		} else if at.key != k || at.off != r.Offset {
			l.noteAgain(id, tpOff{k, r.Offset, e.Time})
		}
		if byPart == nil {
			byPart = make(map[int32][]linRec)
		}
		byPart[r.Partition] = append(byPart[r.Partition], linRec{off: r.Offset, value: id})
	}
	for p, recs := range byPart {
		k := tpKey{e.Topic, p}
		op := l.part(k)
		op.polls = append(op.polls, linPoll{call: call, ret: e.Time, client: l.client(k, e.Process), recs: recs})
	}
}

func (l *linCollector) noteAgain(id int32, at tpOff) {
	for _, a := range l.again[id] {
		if a.key == at.key && a.off == at.off {
			return
		}
	}
	if l.again == nil {
		l.again = make(map[int32][]tpOff)
	}
	l.again[id] = append(l.again[id], at)
}

// finish adds every indeterminate send some read saw as a send at the offset it was first
// read at, taking effect between its invoke and the return of that read. One nobody read
// may or may not have happened and constrains nothing, so it is left out.
func (l *linCollector) finish() {
	for id, call := range l.invokes { // no completion: indeterminate as well
		l.infos[id] = call
	}
	for id, call := range l.infos {
		at, ok := l.firstAt[id]
		if !ok {
			continue
		}
		p := l.part(at.key)
		p.sends = append(p.sends, linSend{off: at.off, value: id, client: l.client(at.key, l.senders[id]), call: min(call, at.ret), ret: at.ret})
	}
	// A value read at a second place is a retry the broker appended twice: an append of the
	// same send, taking effect before the send completed and before that read returned. A
	// value appended after its send completed stays illegal.
	for id, at := range l.firstAt { // read first away from where it was acknowledged
		if int(id) < len(l.acked) && l.acked[id].p != nil && l.acked[id] != (ackAt{l.parts[at.key], at.off}) {
			l.noteAgain(id, at)
		}
	}
	for id, ats := range l.again {
		if int(id) >= len(l.span) || l.span[id][0] < 0 {
			continue
		}
		call, done := l.span[id][0], l.span[id][1]
		for _, at := range ats {
			ret := min(done, at.ret)
			p := l.part(at.key)
			if int(id) < len(l.acked) && l.acked[id] == (ackAt{p, at.off}) || ret < call {
				continue
			}
			p.sends = append(p.sends, linSend{off: at.off, value: id, client: l.client(at.key, l.senders[id]), call: call, ret: ret})
		}
	}
	for i := range l.faults {
		if l.faults[i].Open {
			l.faults[i].End = l.end
		}
	}
}

// CheckLinearizable partitions the history by topic-partition, splits each partition into
// windows of at most opts.WindowSends sends (see linWindow), and checks each window's log
// against logModel with porcupine, opts.Parallel partitions at a time, each within its
// opts.Timeout budget and the opts.MemoryBudget of the heap.
func CheckLinearizable(r *history.Reader, opts LinearOptions) (*LinearResult, error) {
	opts.defaults()
	start := time.Now()
	l := &linCollector{ids: make(map[string]int32), parts: make(map[tpKey]*partOps), invokes: make(map[int32]int64),
		infos: make(map[int32]int64), senders: make(map[int32]int), firstAt: make(map[int32]tpOff), polls: make(map[int]int64),
		open: make(map[int64]int), procBase: make(map[tpKey]map[int]int32)}
	var e history.Event
	for {
		err := r.Next(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("checker: %w", err)
		}
		l.event(&e)
	}
	l.finish()
	// The collector's maps are not needed any more: only parts, names and faults are.
	l.ids, l.invokes, l.infos, l.senders, l.firstAt, l.polls, l.again, l.span, l.acked = nil, nil, nil, nil, nil, nil, nil, nil, nil
	sort.Slice(l.order, func(i, j int) bool {
		a, b := l.order[i], l.order[j]
		return a.topic < b.topic || (a.topic == b.topic && a.p < b.p)
	})
	res := &LinearResult{Result: LinearOK, Partitions: make([]LinearPartition, len(l.order))}
	model := logModel.toPorcupine()
	guard := newHeapGuard(opts.MemoryBudget)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, opts.Parallel)
	for i, k := range l.order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lp, err := checkPartition(model, guard, l.parts[k], l.names, l.faults, opts)
			mu.Lock()
			defer mu.Unlock()
			res.Partitions[i] = lp
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	for _, p := range res.Partitions {
		name := fmt.Sprintf("%s/%d", p.Topic, p.Partition)
		switch p.Result {
		case LinearIllegal:
			res.Illegal = append(res.Illegal, name)
			res.Result = LinearIllegal
		case LinearUnknown:
			res.Unknown = append(res.Unknown, name)
			if res.Result == LinearOK {
				res.Result = LinearUnknown
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// checkPartition checks the windows of one partition in offset order, stopping at the first
// that is not ok.
func checkPartition(model porcupine.Model, guard *heapGuard, p *partOps, names []string, faults []FaultWindow, opts LinearOptions) (LinearPartition, error) {
	t0 := time.Now()
	deadline := t0.Add(opts.Timeout)
	lp := LinearPartition{Topic: p.key.topic, Partition: p.key.p, Result: LinearOK}
	ws := splitWindows(p, opts.WindowSends)
	lp.Windows = len(ws)
	budget := opts.MemoryBudget >> 20
	for wi := range ws {
		w := &ws[wi]
		ops, why, evidence := w.ops(p, names)
		lp.Ops += len(ops)
		left := time.Until(deadline)
		if why != "" {
			lp.Result, lp.Reason = LinearIllegal, why
		} else if left <= 0 {
			lp.Result, lp.Reason = LinearUnknown, fmt.Sprintf("the %s budget ran out before window %d of %d", opts.Timeout, wi+1, len(ws))
		} else if live, over := guard.overBefore(); over {
			lp.Result, lp.Reason = LinearUnknown, fmt.Sprintf("the live heap was %d MiB, near the %d MiB budget, before window %d of %d", live>>20, budget, wi+1, len(ws))
		} else {
			s := guard.start()
			res := porcupine.CheckOperationsTimeout(s.model(model), ops, left)
			guard.done(s)
			switch {
			case s.stop.Load():
				lp.Result = LinearUnknown
				lp.Reason = fmt.Sprintf("the live heap reached %d MiB of the %d MiB budget in window %d of %d (%d operations), so its search was stopped", s.heap.Load()>>20, budget, wi+1, len(ws), len(ops))
			case res == porcupine.Ok:
				continue
			case res == porcupine.Illegal:
				lp.Result = LinearIllegal
				lp.Reason = fmt.Sprintf("window %d of %d (%d operations) has no linearization", wi+1, len(ws), len(ops))
			default:
				lp.Result = LinearUnknown
				lp.Reason = fmt.Sprintf("porcupine used up the %s budget in window %d of %d (%d operations)", opts.Timeout, wi+1, len(ws), len(ops))
			}
		}
		lp.Offsets = []int64{w.first, w.last}
		if why != "" {
			ops = evidence
		}
		if lp.Result == LinearIllegal && len(ops) > 0 && opts.OutDir != "" {
			path, err := visualize(model, guard, p.key, ops, faults, opts)
			if err != nil {
				return lp, err
			}
			lp.Visualization = path
		}
		break
	}
	lp.Elapsed = time.Since(t0)
	return lp, nil
}

// visualize writes porcupine's HTML visualisation of an illegal window, annotated with the
// fault windows, and returns its path ("" when the verbose check, under the heap guard, does
// not confirm it).
func visualize(model porcupine.Model, guard *heapGuard, k tpKey, ops []porcupine.Operation, faults []FaultWindow, opts LinearOptions) (string, error) {
	s := guard.start()
	vres, info := porcupine.CheckOperationsVerbose(s.model(model), ops, opts.Timeout)
	guard.done(s)
	if vres != porcupine.Illegal || s.stop.Load() {
		return "", nil
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return "", fmt.Errorf("checker: %w", err)
	}
	anns := make([]porcupine.Annotation, 0, len(faults))
	for _, f := range faults {
		anns = append(anns, porcupine.Annotation{Tag: "faults", Start: f.Start, End: f.End,
			Description: fmt.Sprintf("fault %d: %s", f.ID, f.Kind),
			Details:     fmt.Sprintf("target %s nodes %v", f.Target, f.Nodes), BackgroundColor: "#f8c8c8"})
	}
	info.AddAnnotations(anns)
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == os.PathSeparator {
			return '_'
		}
		return r
	}, k.topic)
	path := filepath.Join(opts.OutDir, fmt.Sprintf("linearizability-%s-%d.html", safe, k.p))
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return "", fmt.Errorf("checker: visualize %s: %w", path, err)
	}
	return path, nil
}
