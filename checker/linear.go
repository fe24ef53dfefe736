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
	// Timeout bounds the check of one partition; default 30s. A partition that runs out of
	// time is unknown.
	Timeout time.Duration
	// Parallel is how many partitions are checked at once; default GOMAXPROCS.
	Parallel int
	// OutDir receives one HTML visualisation per illegal partition, annotated with the fault
	// windows; empty writes none.
	OutDir string
}

// LinearResult is the porcupine verdict over every partition of a history.
type LinearResult struct {
	// Result is ok when every partition is linearizable, illegal when one is not, else
	// unknown (a partition timed out).
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
	Topic     string        `json:"topic"`
	Partition int32         `json:"partition"`
	Ops       int           `json:"ops"`
	Result    string        `json:"result"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	// Visualization is the path of the HTML visualisation, for an illegal partition.
	Visualization string `json:"visualization,omitempty"`
	// Reason says why a partition is unknown without running porcupine.
	Reason string `json:"reason,omitempty"`
}

// MaxIndeterminateSends bounds the indeterminate sends one partition may hold for porcupine:
// each is open until the end of the history, so it is concurrent with every later operation
// and the search (time and memory) grows exponentially with their number. Partitions with
// more are reported unknown without a search; default 64.
var MaxIndeterminateSends = 64

// CheckLinearizableFile runs the porcupine check on the history at path.
func CheckLinearizableFile(path string, opts LinearOptions) (*LinearResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checker: %w", err)
	}
	defer f.Close()
	return CheckLinearizable(history.NewReader(f, path), opts)
}

// partOps are the porcupine operations of one partition.
type partOps struct {
	key tpKey
	ops []porcupine.Operation
	// end is the history's last time: operations returning after it are indeterminate.
	end int64
}

// linCollector turns a history into per-partition porcupine operations (see logModel).
type linCollector struct {
	ids      map[string]int32
	names    []string
	parts    map[tpKey]*partOps
	order    []tpKey
	invokes  map[int32]int64 // send value id → invoke time
	infos    map[int32]int64 // indeterminate send value id → invoke time
	senders  map[int32]int   // value id → process
	firstAt  map[int32]tpOff // value id → where it was first read
	polls    map[int]int64   // process → invoke time of its pending poll
	faults   []FaultWindow
	open     map[int64]int
	end      int64
	procBase map[tpKey]map[int]int
}

type tpOff struct {
	key tpKey
	off int64
}

func (l *linCollector) id(v string) int32 {
	if id, ok := l.ids[v]; ok {
		return id
	}
	id := int32(len(l.names))
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
func (l *linCollector) client(k tpKey, proc int) int {
	m := l.procBase[k]
	if m == nil {
		m = make(map[int]int)
		l.procBase[k] = m
	}
	c, ok := m[proc]
	if !ok {
		c = len(m)
		m[proc] = c
	}
	return c
}

func (l *linCollector) event(e *history.Event) {
	l.end = max(l.end, e.Time)
	switch e.F {
	case history.FSend:
		id := l.id(e.Value)
		switch e.Type {
		case history.Invoke:
			l.invokes[id] = e.Time
			l.senders[id] = e.Process
		case history.OK:
			call, ok := l.invokes[id]
			if !ok {
				call = e.Time
			}
			delete(l.invokes, id)
			k := tpKey{e.Topic, e.Partition}
			p := l.part(k)
			p.ops = append(p.ops, porcupine.Operation{ClientId: l.client(k, e.Process), Call: call, Return: e.Time,
				Input: logInput{send: true, value: id, name: e.Value}, Output: logOutput{offset: e.Offset}})
		case history.Info:
			call, ok := l.invokes[id]
			if !ok {
				call = e.Time
			}
			delete(l.invokes, id)
			l.infos[id] = call
		case history.Fail:
			delete(l.invokes, id)
		}
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

// pollOps splits one poll into one op per partition it returned records from.
func (l *linCollector) pollOps(e *history.Event, call int64) {
	var byPart map[int32][]linRecord
	for _, r := range e.Records {
		id := l.id(r.Value)
		k := tpKey{e.Topic, r.Partition}
		if _, ok := l.firstAt[id]; !ok {
			l.firstAt[id] = tpOff{k, r.Offset}
		}
		if byPart == nil {
			byPart = make(map[int32][]linRecord)
		}
		byPart[r.Partition] = append(byPart[r.Partition], linRecord{offset: r.Offset, value: id, name: r.Value})
	}
	ps := make([]int32, 0, len(byPart))
	for p := range byPart {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	for _, p := range ps {
		k := tpKey{e.Topic, p}
		op := l.part(k)
		op.ops = append(op.ops, porcupine.Operation{ClientId: l.client(k, e.Process), Call: call, Return: e.Time,
			Input: logInput{}, Output: logOutput{records: byPart[p]}})
	}
}

// finish adds the indeterminate sends some read saw, as sends at the offset they were read at
// whose return is after the end of the history.
func (l *linCollector) finish() {
	ids := make([]int32, 0, len(l.infos))
	for id := range l.infos {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		at, ok := l.firstAt[id]
		if !ok {
			continue
		}
		p := l.part(at.key)
		p.ops = append(p.ops, porcupine.Operation{ClientId: l.client(at.key, l.senders[id]), Call: l.infos[id], Return: l.end + 1,
			Input: logInput{send: true, value: id, name: l.names[id]}, Output: logOutput{offset: at.off}})
	}
	for _, p := range l.parts {
		p.end = l.end
	}
	for i := range l.faults {
		if l.faults[i].Open {
			l.faults[i].End = l.end
		}
	}
}

// CheckLinearizable partitions the history by topic-partition and checks each partition's log
// against logModel with porcupine, in parallel, each within opts.Timeout.
func CheckLinearizable(r *history.Reader, opts LinearOptions) (*LinearResult, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	l := &linCollector{ids: make(map[string]int32), parts: make(map[tpKey]*partOps), invokes: make(map[int32]int64),
		infos: make(map[int32]int64), senders: make(map[int32]int), firstAt: make(map[int32]tpOff), polls: make(map[int]int64),
		open: make(map[int64]int), procBase: make(map[tpKey]map[int]int)}
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
	sort.Slice(l.order, func(i, j int) bool {
		a, b := l.order[i], l.order[j]
		return a.topic < b.topic || (a.topic == b.topic && a.p < b.p)
	})
	res := &LinearResult{Result: LinearOK, Partitions: make([]LinearPartition, len(l.order))}
	model := logModel.toPorcupine()
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
			lp, err := checkPartition(model, l.parts[k], l.faults, opts)
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

func checkPartition(model porcupine.Model, p *partOps, faults []FaultWindow, opts LinearOptions) (LinearPartition, error) {
	t0 := time.Now()
	lp := LinearPartition{Topic: p.key.topic, Partition: p.key.p, Ops: len(p.ops)}
	open := 0
	for _, op := range p.ops {
		if in, ok := op.Input.(logInput); ok && in.send && op.Return > p.end {
			open++
		}
	}
	if open > MaxIndeterminateSends {
		lp.Result = LinearUnknown
		lp.Reason = fmt.Sprintf("%d indeterminate sends (more than %d) make the search intractable", open, MaxIndeterminateSends)
		return lp, nil
	}
	res := porcupine.CheckOperationsTimeout(model, p.ops, opts.Timeout)
	lp.Elapsed = time.Since(t0)
	switch res {
	case porcupine.Ok:
		lp.Result = LinearOK
	case porcupine.Illegal:
		lp.Result = LinearIllegal
	default:
		lp.Result = LinearUnknown
	}
	if res != porcupine.Illegal || opts.OutDir == "" {
		return lp, nil
	}
	// Only an illegal partition pays for the verbose check the visualisation needs.
	vres, info := porcupine.CheckOperationsVerbose(model, p.ops, opts.Timeout)
	if vres != porcupine.Illegal {
		return lp, nil
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return lp, fmt.Errorf("checker: %w", err)
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
	}, p.key.topic)
	path := filepath.Join(opts.OutDir, fmt.Sprintf("linearizability-%s-%d.html", safe, p.key.p))
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return lp, fmt.Errorf("checker: visualize %s: %w", path, err)
	}
	lp.Visualization = path
	return lp, nil
}
