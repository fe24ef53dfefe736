// Package checker judges a kchaos run history: streaming, linear-time anomaly analyses in the
// style of Jepsen's Kafka workload (lost, duplicate, inconsistent offsets, reorders, poll skips,
// aborted and uncommitted reads, min.insync claims, consumer-side delivery), a porcupine
// linearizability check of each partition's log, and verdicts that compare what happened with
// the guarantees the run's configuration claims. It never talks to a broker: its only input is
// a history (package history).
package checker

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kchaos/kchaos/history"
)

// Result is everything the checker found in one history. It is JSON-serialisable: this is
// the verdict.json the report reads.
type Result struct {
	// File is the history the result is about.
	File string       `json:"file,omitempty"`
	Run  *history.Run `json:"run,omitempty"`
	// Events is the number of events read; End the time of the last one.
	Events int64 `json:"events"`
	End    int64 `json:"end"`
	Stats  Stats `json:"stats"`
	// Anomalies holds every anomaly name (AnomalyNames), keyed by name.
	Anomalies map[string]*Anomaly `json:"anomalies"`
	Faults    []FaultWindow       `json:"faults,omitempty"`
	// Guarantees are the verdicts against what the configuration claims (see Judge).
	Guarantees []Guarantee `json:"guarantees"`
	// Graph describes the transactional dependency graph, in runs with transactions.
	Graph *GraphResult `json:"graph,omitempty"`
	// Series are unseen records and consumer lag over time, for plots.
	Series *Series `json:"series,omitempty"`
	// Groups are what each consumer group did: generations, exclusive reads, rebalances.
	Groups []GroupStats `json:"groups,omitempty"`
	// Linearizable is the porcupine verdict, when it was run.
	Linearizable *LinearResult `json:"linearizable,omitempty"`
	// Verdict is "pass", "fail" or "unknown": fail when any claimed guarantee failed, unknown
	// when none failed but one could not be decided.
	Verdict string `json:"verdict"`
}

// Stats counts what the history contains.
type Stats struct {
	SendsOK      int64 `json:"sends_ok"`
	SendsFail    int64 `json:"sends_fail"`
	SendsInfo    int64 `json:"sends_info"`
	SendsPending int64 `json:"sends_pending"`
	Polls        int64 `json:"polls"`
	RecordsRead  int64 `json:"records_read"`
	Processed    int64 `json:"records_processed"`
	Commits      int64 `json:"commits"`
	Partitions   int   `json:"partitions"`
	Crashes      int64 `json:"crashes"`
	MetaSamples  int64 `json:"meta_samples"`
	// Outputs counts consume-transform-produce output values sent or read (values
	// "<input>/<output>"); OutputsRead those read outside aborted transactions, with a value
	// read at more than one offset counted twice.
	Outputs     int64 `json:"outputs,omitempty"`
	OutputsRead int64 `json:"outputs_read,omitempty"`
	// Untransformed counts inputs known to exist with no output read, at or above the
	// highest offset committed on their partition: not yet transformed (like Unseen, not
	// proof of anything), so exactly-once stays undecided for them.
	Untransformed int64 `json:"untransformed,omitempty"`
	// AckedLeaderOnly counts acks=all sends acknowledged while the sampled ISR was the leader
	// alone for the whole send (same rule as MinInsync, with a minimum of 2): the writes that
	// acks=all with min.insync.replicas=1 leaves unreplicated (claim 4).
	AckedLeaderOnly int64 `json:"acked_leader_only"`
	// UnacknowledgedUnread counts, in acks=0 runs, sends no read returned although reads
	// covered their topic: with no acknowledgement the producer never learns these were
	// lost (claim 1).
	UnacknowledgedUnread int64 `json:"unacknowledged_unread,omitempty"`
	// ReadInversions counts records a consumer read after a record of the same ordering
	// scope (the same producer, and the same key when keyed) that was sent later, since its
	// last assignment; the final drain is left out. Keyed records keep their order (claim
	// 10), records of one producer spread over partitions do not.
	ReadInversions int64 `json:"read_inversions"`
}

// Count returns the count of the named anomaly.
func (r *Result) Count(name string) int64 {
	if a := r.Anomalies[name]; a != nil {
		return a.Count
	}
	return 0
}

// CheckFile runs the linear analyses and the verdicts on the history at path.
func CheckFile(path string) (*Result, error) {
	f, err := history.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("checker: %w", err)
	}
	defer f.Close()
	res, err := Check(history.NewReader(f, path))
	if res != nil {
		res.File = path
	}
	return res, err
}

// Check reads every event of r and returns the result of the linear analyses and verdicts.
// Decoding runs in parallel ahead of the analyses (history.Reader.Batches), with aliased
// strings (history.Reader.AliasStrings): r must not be read further afterwards. Memory is linear in the
// number of distinct values and offsets (tens of bytes each), not in the number of events.
func Check(r *history.Reader) (*Result, error) {
	r.AliasStrings() // the checker clones the few strings it keeps
	c := newChecker()
	defer c.vals.release() // after finish: results hold copies, never table memory
	if err := c.consume(r); err != nil {
		return nil, err
	}
	return c.finish(), nil
}

func (c *checker) consume(r *history.Reader) error {
	err := r.Batches(0, func(evs []history.Event) error {
		for i := range evs {
			c.event(&evs[i])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checker: %w", err)
	}
	return nil
}

// checker holds the streaming state of the analyses.
type checker struct {
	run     *history.Run
	acksAll bool
	events  int64
	end     int64
	stats   Stats
	an      anomalies
	vals    *valueTable
	keyIDs  map[string]int32
	partIDs map[tpKey]int32
	// topicParts caches partIDs per topic, indexed by partition number (id + 1).
	topicParts     map[string]*[]int32
	lastTopic      string
	lastTopicParts *[]int32
	parts          []*part
	txnIDs         map[int64]int32
	txns           []txnState
	crashes        map[int32]int32 // crash count per process
	sessIDs        map[sessKey]int32
	sessOf         []int32 // process → current producer session id + 1 (cache of sessIDs)
	sessions       map[sessKey]*session
	gaps           []gap
	faults         []FaultWindow
	openFault      map[int64]int
	procs          map[int32]*procState
	pollNodes      []pollNode
	series         *seriesState
	scratch        []partMax
	// groups are the consumer groups by id, memberOf each member's group (groups.go).
	groups   map[string]*groupState
	memberOf map[int32]*groupState
	// order is, per consumer process, the send time of the latest record it read in each
	// ordering scope since its last assignment (noteOrder).
	order map[int32]map[[2]int32]int64
	// drainHi is, per partition id, the highest offset the final drain read; -1.
	drainHi []int64
}

func newChecker() *checker {
	return &checker{
		an:         newAnomalies(),
		vals:       newValueTable(),
		keyIDs:     make(map[string]int32),
		partIDs:    make(map[tpKey]int32),
		topicParts: make(map[string]*[]int32),
		txnIDs:     make(map[int64]int32),
		crashes:    make(map[int32]int32),
		sessIDs:    make(map[sessKey]int32),
		sessions:   make(map[sessKey]*session),
		openFault:  make(map[int64]int),
		procs:      make(map[int32]*procState),
		series:     newSeriesState(),
	}
}

func (c *checker) procOf(proc int32) *procState {
	ps := c.procs[proc]
	if ps == nil {
		ps = &procState{pollCall: -1, lastPoll: -1, openTxn: -1}
		c.procs[proc] = ps
	}
	return ps
}

// graphOn reports whether the dependency graph is built: the run has transactions.
func (c *checker) graphOn() bool {
	return (c.run != nil && c.run.Transactional) || len(c.txns) > 0
}

func (c *checker) valueID(v string) int32 { return c.vals.id(v) }

func (c *checker) partID(topic string, p int32) int32 {
	if topic != c.lastTopic || c.lastTopicParts == nil {
		c.lastTopic = topic
		c.lastTopicParts = c.topicParts[topic]
		if c.lastTopicParts == nil {
			c.lastTopicParts = &[]int32{}
			c.topicParts[topic] = c.lastTopicParts
		}
	}
	tp := *c.lastTopicParts
	if p >= 0 && int(p) < len(tp) && tp[p] != 0 {
		return tp[p] - 1
	}
	k := tpKey{topic, p}
	id, ok := c.partIDs[k]
	if !ok {
		id = int32(len(c.parts))
		c.partIDs[k] = id
		c.parts = append(c.parts, newPart(topic, p))
	}
	if p >= 0 && p < 1<<16 {
		for int(p) >= len(tp) {
			tp = append(tp, 0)
		}
		tp[p] = id + 1
		*c.lastTopicParts = tp
	}
	return id
}

func (c *checker) txnIndex(id int64) int32 {
	if i, ok := c.txnIDs[id]; ok {
		return i
	}
	i := int32(len(c.txns))
	c.txnIDs[id] = i
	c.txns = append(c.txns, txnState{id: id, commitInvoke: -1, proc: -1, start: -1, end: -1})
	return i
}

// producerSession numbers (process, crash count) pairs: a crash starts a new producer.
func (c *checker) producerSession(proc int32) int32 {
	if proc >= 0 && int(proc) < len(c.sessOf) && c.sessOf[proc] != 0 {
		return c.sessOf[proc] - 1
	}
	id := c.newProducerSession(proc)
	if proc >= 0 && proc < 1<<16 {
		for int(proc) >= len(c.sessOf) {
			c.sessOf = append(c.sessOf, 0)
		}
		c.sessOf[proc] = id + 1
	}
	return id
}

func (c *checker) newProducerSession(proc int32) int32 {
	k := sessKey{proc, c.crashes[proc]}
	if id, ok := c.sessIDs[k]; ok {
		return id
	}
	id := int32(len(c.sessIDs))
	c.sessIDs[k] = id
	return id
}

func (c *checker) event(e *history.Event) {
	c.events++
	c.end = max(c.end, e.Time)
	s := c.series
	if e.Time >= s.next {
		s.advance(e.Time, len(c.parts))
	}
	proc := int32(e.Process)
	fresh := proc >= 0 && s.fresh(proc)
	if proc == s.drainProc {
		s.drainEnd = e.Time
	}
	switch e.F {
	case history.FRun:
		if e.Run != nil && c.run == nil {
			c.run = e.Run
			c.acksAll = e.Run.Acks == "all" || e.Run.Acks == "-1"
		}
	case history.FSend:
		c.send(e)
	case history.FPoll:
		switch e.Type {
		case history.OK:
			c.poll(e)
			c.groupPoll(e)
		case history.Invoke:
			c.procOf(int32(e.Process)).pollCall = e.Time
		default:
			c.procOf(int32(e.Process)).pollCall = -1
		}
	case history.FCommit:
		if e.Type == history.OK {
			c.commit(e)
		}
	case history.FAssign, history.FSeek:
		if e.Type != history.Fail && e.Type != history.Invoke {
			c.reposition(e)
			if e.F == history.FAssign {
				s.assign(proc, e.Time, e.Offsets, fresh)
				c.groupEvent(e)
				delete(c.order, proc)
			}
		}
	case history.FSubscribe:
		if e.Type == history.OK {
			c.groupEvent(e)
		}
	case history.FCrash:
		c.crash(proc)
		delete(s.holdsByProcs, proc)
		c.groupCrash(proc)
		delete(c.order, proc)
	case history.FProcess:
		if e.Type != history.Fail && e.Type != history.Invoke {
			c.process(e)
		}
	case history.FTxn:
		c.txn(e)
	case history.FFault:
		c.fault(e)
	case history.FMeta:
		c.meta(e)
	}
}

func (c *checker) send(e *history.Event) {
	if e.Value == "" {
		return
	}
	id := c.valueID(e.Value)
	v := c.vals.at(id)
	if e.Type == history.Invoke {
		c.series.lastSend = e.Time
		v.invoke = e.Time
		v.status = stInvoked
		v.proc = int32(e.Process)
		v.session = c.producerSession(int32(e.Process))
		if e.Key != "" {
			k, ok := c.keyIDs[e.Key]
			if !ok {
				k = int32(len(c.keyIDs))
				c.keyIDs[strings.Clone(e.Key)] = k
			}
			v.key = k
		}
		if e.TxnID != 0 {
			v.txn = c.txnIndex(e.TxnID)
			t := &c.txns[v.txn]
			if t.start < 0 {
				t.proc, t.start = int32(e.Process), e.Time
			}
		}
		return
	}
	if v.status == stNone { // completion without invoke: take what it says
		v.proc = int32(e.Process)
		v.session = c.producerSession(int32(e.Process))
		v.invoke = e.Time
		if e.TxnID != 0 {
			v.txn = c.txnIndex(e.TxnID)
		}
	}
	v.done = e.Time
	switch e.Type {
	case history.OK:
		v.status = stOK
		c.stats.SendsOK++
		pid := c.partID(e.Topic, e.Partition)
		v.ackPart, v.ackOffset = pid, e.Offset
		if v.readPart == pid && v.readOffset == e.Offset {
			v.flags |= flReadAtAck
		}
		c.associate(pid, e.Offset, id, e.Time, int(e.Process))
		c.countUnseen(pid, v, e.Offset, e.Time)
		if c.acksAll {
			c.checkInsync(pid, id)
		}
	case history.Fail:
		// NOT_ENOUGH_REPLICAS_AFTER_APPEND means the leader appended the record before failing
		// the request: the write may be visible, so it is indeterminate, not failed.
		if e.Error == "NOT_ENOUGH_REPLICAS_AFTER_APPEND" {
			v.status = stInfo
			c.stats.SendsInfo++
			break
		}
		v.status = stFail
		c.stats.SendsFail++
	case history.Info:
		v.status = stInfo
		c.stats.SendsInfo++
	}
}

// countUnseen counts an acknowledged send no read has returned yet, for Series.
func (c *checker) countUnseen(pid int32, v *value, off, t int64) {
	s := c.series
	if off >= 0 {
		s.noteKnown(pid, off, t)
	}
	if v.readPart >= 0 || v.flags&flUnseen != 0 {
		return
	}
	v.flags |= flUnseen
	for int(pid) >= len(s.unseenPart) {
		s.unseenPart = append(s.unseenPart, 0)
	}
	s.unseenPart[pid]++
	s.unseenKey[keyBucket(v.key)]++
}

// associate records that value id was seen (acked or read) at offset off of partition pid, and
// reports an inconsistent offset the first time a second value appears there.
func (c *checker) associate(pid int32, off int64, id int32, t int64, proc int) {
	p := c.parts[pid]
	cur := p.log.setIfEmpty(off, id)
	if cur == id || p.conflicts[off] {
		return
	}
	if p.conflicts == nil {
		p.conflicts = make(map[int64]bool)
	}
	p.conflicts[off] = true
	c.an.add(InconsistentOffsets, t, t, func() Example {
		return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{off},
			Start: t, End: t, Process: proc,
			Detail: "offset holds " + strconv.Quote(c.vals.name(cur)) + " and " + strconv.Quote(c.vals.name(id))}
	})
}

func (c *checker) commit(e *history.Event) {
	c.stats.Commits++
	for _, po := range e.Offsets {
		p := c.parts[c.partID(e.Topic, po.Partition)]
		if po.Offset > p.maxCommitted {
			p.maxCommitted, p.commitProc, p.commitTime = po.Offset, int32(e.Process), e.Time
		}
	}
}

func (c *checker) crash(proc int32) {
	c.stats.Crashes++
	c.crashes[proc]++
	if proc >= 0 && int(proc) < len(c.sessOf) {
		c.sessOf[proc] = 0
	}
	for k, s := range c.sessions {
		if k.proc == proc {
			c.endSession(k, s)
		}
	}
}

func (c *checker) txn(e *history.Event) {
	if e.Txn == nil || e.TxnID == 0 {
		return
	}
	ti := c.txnIndex(e.TxnID)
	t := &c.txns[ti]
	ps := c.procOf(int32(e.Process))
	switch e.Txn.Op {
	case "begin":
		if e.Type == history.OK {
			// A consume-transform-produce transaction read its inputs in the poll before.
			t.proc, t.start = int32(e.Process), e.Time
			if ps.lastPoll >= 0 {
				t.start = ps.lastPoll
			}
			ps.openTxn, ps.openSince, ps.lastPoll = ti, e.Time, -1
		}
	case "commit":
		switch e.Type {
		case history.Invoke:
			if t.commitInvoke < 0 {
				t.commitInvoke = e.Time
			}
		case history.OK:
			t.committed = true
			if t.commitInvoke < 0 {
				t.commitInvoke = e.Time
			}
		case history.Fail:
			t.aborted = true
		}
	case "abort":
		if e.Type == history.OK {
			t.aborted = true
		}
	}
	if e.Type != history.Invoke && e.Txn.Op != "begin" {
		if e.Type != history.Info {
			t.end = e.Time
		}
		if ps.openTxn == ti {
			ps.openTxn = -1
		}
		ps.lastPoll = -1
	}
}

// reportPrecommitted reports value id, of an open transaction, read by that transaction.
func (c *checker) reportPrecommitted(id, pid int32, off, t int64, why string) {
	v := c.vals.at(id)
	if v.flags&flPrecommitted != 0 {
		return
	}
	v.flags |= flPrecommitted
	c.an.add(PrecommittedRead, v.invoke, t, func() Example {
		p := c.parts[pid]
		return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{off},
			Start: v.invoke, End: t, Process: int(v.proc), Detail: fmt.Sprintf("transaction %d's value %s", c.txns[v.txn].id, why)}
	})
}

func (c *checker) fault(e *history.Event) {
	if e.Fault == nil {
		return
	}
	f := e.Fault
	switch f.Phase {
	case "start":
		c.openFault[f.ID] = len(c.faults)
		c.faults = append(c.faults, FaultWindow{ID: f.ID, Kind: f.Kind, Target: f.Target, Nodes: f.Nodes, Start: e.Time, End: -1, Open: true})
	case "end":
		if i, ok := c.openFault[f.ID]; ok {
			c.faults[i].End, c.faults[i].Open = e.Time, false
			delete(c.openFault, f.ID)
		}
	}
}

// InsyncSettle is how long after its acknowledgement the sampled ISR must still read too
// small for an acks=all write to count as acknowledged with too small an ISR (MinInsync,
// Stats.AckedLeaderOnly): 500ms. A leader counts a follower that caught up back in its ISR
// before the controller's metadata shows it (Kafka's maximal ISR), so writes acknowledged
// as the ISR grows back are no violation.
const InsyncSettle = int64(500e6)

// meta tracks the sampled ISR of a partition for the min-insync analysis.
func (c *checker) meta(e *history.Event) {
	if e.ISR == nil {
		return
	}
	c.stats.MetaSamples++
	p := c.parts[c.partID(e.Topic, e.Partition)]
	p.isrKnown = true
	p.isrSize = len(e.ISR.ISR)
	p.isrMin = e.ISR.MinInsyncReplicas
	if p.isrMin == 0 && c.run != nil {
		p.isrMin = c.run.MinInsyncReplicas
	}
	if len(p.smallAcks) > 0 {
		keep := p.smallAcks[:0]
		if p.isrSize < p.isrMin {
			for _, id := range p.smallAcks {
				if c.vals.at(id).done <= e.Time-InsyncSettle {
					c.reportInsync(p, id, e.Time)
				} else {
					keep = append(keep, id)
				}
			}
		}
		p.smallAcks = keep
	}
	keep := p.aloneAcks[:0]
	if p.isrSize <= 1 {
		for _, t := range p.aloneAcks {
			if t <= e.Time-InsyncSettle {
				c.stats.AckedLeaderOnly++
			} else {
				keep = append(keep, t)
			}
		}
	}
	p.aloneAcks = keep
	if p.isrSize < p.isrMin {
		if p.smallSince < 0 {
			p.smallSince = e.Time
		}
	} else {
		p.smallSince = -1
	}
	if p.isrSize <= 1 {
		if p.aloneSince < 0 {
			p.aloneSince = e.Time
		}
	} else {
		p.aloneSince = -1
	}
}

// checkInsync reports an acks=all send acknowledged while the ISR was known too small.
func (c *checker) checkInsync(pid int32, id int32) {
	p := c.parts[pid]
	v := c.vals.at(id)
	if p.isrKnown && p.aloneSince >= 0 && p.aloneSince <= v.invoke {
		p.aloneAcks = append(p.aloneAcks, v.done)
	}
	if !p.isrKnown || p.smallSince < 0 || p.smallSince > v.invoke {
		return
	}
	p.smallAcks = append(p.smallAcks, id)
}

// reportInsync records value id's min-insync violation, confirmed by the sample at time until.
func (c *checker) reportInsync(p *part, id int32, until int64) {
	v := c.vals.at(id)
	size, need, since := p.isrSize, p.isrMin, p.smallSince
	c.an.add(MinInsync, v.invoke, v.done, func() Example {
		return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{v.ackOffset},
			Start: v.invoke, End: v.done, Process: int(v.proc),
			Detail: fmt.Sprintf("acks=all acknowledged with ISR size %d < min.insync.replicas %d in samples from t=%d to t=%d", size, need, since, until)}
	})
}
