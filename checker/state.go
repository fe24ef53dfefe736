package checker

import "sort"

// Value status, from the completion of its send.
const (
	stNone    uint8 = iota // read but never sent in this history
	stInvoked              // invoked, no completion
	stOK
	stFail
	stInfo
)

// Value flags.
const (
	flDuplicate    uint8 = 1 << iota // read at more than one offset
	flReadAtAck                      // read at its acknowledged partition and offset
	flProcessed                      // processed at least once (FProcess)
	flOutput                         // a transform output "<input>/<output>"; in is its input
	flPrecommitted                   // reported as a precommitted read
	flUnseen                         // counted unseen in Series until its first read
	flDrained                        // read by the final drain
)

// value is the compact per-value state; values are interned into dense ids in order of first
// appearance, which for sent values is invoke order.
type value struct {
	invoke, done  int64 // send invoke and completion times; -1 when absent
	ackOffset     int64 // acknowledged offset; -1 when not ok
	readOffset    int64 // first offset a read saw it at; -1 when never read
	firstRead     int64 // time of the first read; -1 when never read
	ackPart       int32 // partition id of the ack; -1
	readPart      int32 // partition id of the first read; -1
	session       int32 // producer session id; -1
	key           int32 // key id; -1 for no key
	txn           int32 // transaction index; -1 for none
	proc          int32 // sending process
	prod          int32 // producer number parsed from the value, or -1 (see valueTable)
	seq           int32 // sequence number parsed from the value (below maxDenseSeq)
	in            int32 // value id of the input of a transform output (flOutput); -1
	status, flags uint8
}

// pageBits sets the size of one page of a partition's offset index: 4096 offsets.
const pageBits = 12

// pagedLog maps a partition's offsets to value ids + 1 (0: unknown), in pages so that sparse or
// high offsets cost little and dense ones cost 4 bytes each. Pages of offsets below
// denseOffsets live in a slice, others in a map.
type pagedLog struct {
	dense  []*[1 << pageBits]int32
	sparse map[int64]*[1 << pageBits]int32
	sorted []int64 // page keys in order, set by freeze
}

// denseOffsets bounds the offsets whose pages are found by index: 2^32.
const denseOffsets = 1 << 32

func (l *pagedLog) page(off int64, create bool) *[1 << pageBits]int32 {
	k := off >> pageBits
	if off < denseOffsets {
		if k < int64(len(l.dense)) && l.dense[k] != nil {
			return l.dense[k]
		}
		if !create {
			return nil
		}
		for k >= int64(len(l.dense)) {
			l.dense = append(l.dense, nil)
		}
		p := new([1 << pageBits]int32)
		l.dense[k] = p
		return p
	}
	p := l.sparse[k]
	if p == nil && create {
		if l.sparse == nil {
			l.sparse = make(map[int64]*[1 << pageBits]int32)
		}
		p = new([1 << pageBits]int32)
		l.sparse[k] = p
	}
	return p
}

// get returns the value id at off, or -1.
func (l *pagedLog) get(off int64) int32 {
	if off < 0 {
		return -1
	}
	p := l.page(off, false)
	if p == nil {
		return -1
	}
	return p[off&(1<<pageBits-1)] - 1
}

// setIfEmpty stores id at off unless a value is there; it returns the value now at off.
func (l *pagedLog) setIfEmpty(off int64, id int32) int32 {
	if off < 0 {
		return id
	}
	p := l.page(off, true)
	slot := &p[off&(1<<pageBits-1)]
	if *slot == 0 {
		*slot = id + 1
	}
	return *slot - 1
}

// freeze sorts the page keys; call it once the log no longer grows, before scan.
func (l *pagedLog) freeze() {
	l.sorted = make([]int64, 0, len(l.dense)+len(l.sparse))
	for k, p := range l.dense {
		if p != nil {
			l.sorted = append(l.sorted, int64(k))
		}
	}
	for k := range l.sparse {
		l.sorted = append(l.sorted, k)
	}
	sort.Slice(l.sorted, func(i, j int) bool { return l.sorted[i] < l.sorted[j] })
}

// scan calls f for every known offset in [lo, hi], in increasing order, until f returns false.
// Its cost is bounded by the known offsets in the range, however wide the range. The log must
// be frozen.
func (l *pagedLog) scan(lo, hi int64, f func(off int64, id int32) bool) {
	lo = max(lo, 0)
	i := sort.Search(len(l.sorted), func(i int) bool { return l.sorted[i] >= lo>>pageBits })
	for ; i < len(l.sorted) && l.sorted[i] <= hi>>pageBits; i++ {
		k := l.sorted[i]
		pg := l.page(k<<pageBits, false)
		j0 := 0
		if k == lo>>pageBits {
			j0 = int(lo & (1<<pageBits - 1))
		}
		for j := j0; j < len(pg); j++ {
			v := pg[j]
			off := k<<pageBits | int64(j)
			if v == 0 {
				continue
			}
			if off > hi {
				return
			}
			if !f(off, v-1) {
				return
			}
		}
	}
}

// interval is a closed range of offsets.
type interval struct{ lo, hi int64 }

// part is the state of one topic-partition.
type part struct {
	topic     string
	partition int32
	log       pagedLog
	conflicts map[int64]bool // offsets with more than one value
	// coverage are the offset ranges read sessions covered (merged at the end).
	coverage []interval
	// processed counts FProcess reports per offset, saturating at 255.
	processed    map[int64]*[1 << pageBits]uint8
	lowProcessed int64 // lowest processed offset; -1
	lastProcKey  int64 // cache of processedCount
	lastProcPage *[1 << pageBits]uint8
	maxCommitted int64 // highest ok committed offset; -1
	commitProc   int32 // process and time of the commit of maxCommitted
	commitTime   int64
	// ISR tracking for min-insync.
	isrKnown   bool
	isrSize    int
	isrMin     int
	smallSince int64 // time of the first of the current run of too-small samples; -1
	// smallAcks are acks=all sends acknowledged inside the current run of too-small samples,
	// waiting for a sample InsyncSettle after their acknowledgement: they are violations only
	// if it is still too small.
	smallAcks []int32
	// aloneAcks are the acknowledgement times of acks=all sends acknowledged inside the
	// current run of leader-only samples, counted in Stats.AckedLeaderOnly once a sample
	// InsyncSettle after them is still leader-only.
	aloneAcks  []int64
	aloneSince int64 // time of the first of the current run of leader-only samples; -1
}

func newPart(topic string, p int32) *part {
	return &part{topic: topic, partition: p, lowProcessed: -1, maxCommitted: -1, smallSince: -1, aloneSince: -1}
}

// covered reports whether off lies inside a merged coverage interval; coverage must be merged.
func (p *part) covered(off int64) bool {
	i := sort.Search(len(p.coverage), func(i int) bool { return p.coverage[i].hi >= off })
	return i < len(p.coverage) && p.coverage[i].lo <= off
}

func (p *part) mergeCoverage() {
	c := p.coverage
	sort.Slice(c, func(i, j int) bool { return c[i].lo < c[j].lo })
	out := c[:0]
	for _, iv := range c {
		if n := len(out); n > 0 && iv.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, iv.hi)
			continue
		}
		out = append(out, iv)
	}
	p.coverage = out
}

// markProcessed counts one FProcess report of off and returns the new count.
func (p *part) markProcessed(off int64) uint8 {
	if p.processed == nil {
		p.processed = make(map[int64]*[1 << pageBits]uint8)
	}
	k := off >> pageBits
	pg := p.processed[k]
	if pg == nil {
		pg = new([1 << pageBits]uint8)
		p.processed[k] = pg
	}
	slot := &pg[off&(1<<pageBits-1)]
	if *slot < 255 {
		*slot++
	}
	if p.lowProcessed < 0 || off < p.lowProcessed {
		p.lowProcessed = off
	}
	return *slot
}

func (p *part) processedCount(off int64) uint8 {
	k := off >> pageBits
	if p.lastProcPage == nil || p.lastProcKey != k {
		p.lastProcKey, p.lastProcPage = k, p.processed[k]
		if p.lastProcPage == nil {
			return 0
		}
	}
	return p.lastProcPage[off&(1<<pageBits-1)]
}

// txnState is what the history says about one transaction.
type txnState struct {
	id           int64
	commitInvoke int64 // first invoke of its commit; -1
	proc         int32 // process that began it or sent in it; -1
	start        int64 // its process's last poll before it began, else its begin; -1
	end          int64 // completion of its commit or abort; -1 while unknown
	committed    bool
	aborted      bool
}

// procState is what the dependency graph needs to know about a client process as the
// history streams by.
type procState struct {
	pollCall  int64 // invoke of its pending poll; -1
	lastPoll  int64 // invoke of its last ok poll with records since its last transaction; -1
	openTxn   int32 // transaction index of its open transaction; -1
	openSince int64
}

// pollNode is an ok poll with records, a node of the dependency graph: per partition the
// highest offset it read.
type pollNode struct {
	proc      int32
	call, ret int64
	reads     []partMax
}

type partMax struct {
	part int32
	off  int64
}

// session is one process's uninterrupted reading of one partition.
type session struct {
	low      int64 // known start position or first offset read; -1 unknown
	last     int64 // last offset read, or start position - 1; -1 with hasLast false
	hi       int64 // highest offset read
	hasLast  bool
	read     bool // read at least one record
	lastTime int64
	lastPoll int64 // index of the poll event of the last record read; -1
}

// gap is a candidate poll-skip, decided at the end when every existing offset is known.
type gap struct {
	part       int32
	from, to   int64 // exclusive bounds: offsets from+1 .. to-1 were skipped
	proc       int32
	start, end int64 // times of the two reads
	within     bool  // both reads came from one poll
}

type tpKey struct {
	topic string
	p     int32
}

type sessKey struct {
	proc int32
	part int32
}
