package broker

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchaos/kchaos/broker/group"
)

// coordinator is the broker's group coordinator: it owns the groups whose __consumer_offsets
// partition this broker leads, serialises every group operation under one mutex, persists
// group metadata and offsets to __consumer_offsets before answering, and drives the groups'
// timers from a ticker.
//
// Ownership follows partition leadership: loadPartition reads a partition's groups back when
// this broker becomes its leader and unloadPartition drops them when it stops being leader;
// both run through handOff, in image order, off the image-apply path.
//
// Lock order: coordinator.mu before Broker.mu and the partition locks (appends to
// __consumer_offsets happen under coordinator.mu, so the log and memory agree on order).
type coordinator struct {
	b   *Broker
	cfg group.Config

	ready   atomic.Bool // __consumer_offsets exists and this broker's loads have run
	readyMu sync.Mutex  // serialises creating the topic

	// handoffs runs ownership changes in the order the images made them.
	handoffs handoffQueue

	mu      sync.Mutex // guards everything below
	groups  map[string]*group.Group
	owned   map[int32]bool
	loading map[int32]bool
	// books tracks, per group, what has been persisted and counted.
	books map[*group.Group]*groupBook
	// pendingTxn holds transactional offset commits (TxnOffsetCommit) written to the log but
	// not yet committed or aborted by a marker, per producer id and group.
	pendingTxn map[int64]map[string]map[group.TopicPartition]group.Offset
	// loadMarkers queues the transaction markers written to a partition while it loads; the
	// load applies them once its pending offsets are installed.
	loadMarkers map[int32][]txnMarker
}

// groupBook is the coordinator's bookkeeping for one group.
type groupBook struct {
	stored     uint64 // MetaVersion last written to the log
	rebalances int    // Rebalances already counted in the metric
}

// groupTickInterval is how often group timers (session expiry, rebalance deadlines, initial
// delay) are checked; it bounds their precision. Default 10ms.
const groupTickInterval = 10 * time.Millisecond

func newCoordinator(b *Broker) *coordinator {
	return &coordinator{
		b:       b,
		cfg:     group.Config{InitialRebalanceDelay: time.Duration(b.cfg.propInt("group.initial.rebalance.delay.ms")) * time.Millisecond},
		groups:  map[string]*group.Group{},
		owned:   map[int32]bool{},
		loading: map[int32]bool{},
		books:   map[*group.Group]*groupBook{},

		pendingTxn:  map[int64]map[string]map[group.TopicPartition]group.Offset{},
		loadMarkers: map[int32][]txnMarker{},
	}
}

// numPartitions is offsets.topic.num.partitions.
func (c *coordinator) numPartitions() int32 {
	return int32(c.b.cfg.propInt("offsets.topic.num.partitions"))
}

// partitionFor maps a group to its __consumer_offsets partition as Kafka does:
// abs(groupId.hashCode()) % partitions, with Java's String.hashCode over UTF-16 units.
func partitionFor(groupID string, n int32) int32 {
	var h int32
	for _, r := range groupID {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}

// ensureReady creates __consumer_offsets on first use, as Kafka does on the first
// FindCoordinator: offsets.topic.num.partitions partitions, compacted, with
// offsets.topic.replication.factor replicas capped at the number of live brokers. The
// partitions' leaders load their groups (applyPartition); this broker's loads have run when it
// returns.
func (c *coordinator) ensureReady() *kerr.Error {
	if c.ready.Load() {
		return nil
	}
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	if c.ready.Load() {
		return nil
	}
	cfgs := map[string]string{"cleanup.policy": "compact", "segment.bytes": strconv.Itoa(offsetsTopicSegmentBytes)}
	if err := c.b.cl.createInternalTopic(offsetsTopic, c.numPartitions(), "offsets.topic.replication.factor", cfgs); err != nil {
		c.b.log.Warn("create __consumer_offsets", "err", err)
		return kerr.CoordinatorNotAvailable
	}
	c.handoffs.wait()
	c.ready.Store(true)
	return nil
}

// handOff runs an ownership change (loadPartition, unloadPartition) on its own goroutine,
// after every change queued before it. The caller — applying a metadata image — never waits
// for c.mu: a group write holds c.mu while it waits up to offsetsCommitTimeout for the ISR,
// and that wait ends only once the image that moved the partition's leadership away is
// applied, so unloading inline would stall the image (every partition's leadership change on
// this broker) behind each queued commit in turn.
func (c *coordinator) handOff(f func()) { c.handoffs.run(&c.b.bgWG, f) }

// awaitHandoffs waits until every ownership change queued so far has run.
func (c *coordinator) awaitHandoffs() { c.handoffs.wait() }

// handoffQueue runs functions one after another in the order queued, each on a goroutine of
// its own so the caller never waits.
type handoffQueue struct {
	mu   sync.Mutex
	tail chan struct{} // closed when the last queued function has run
}

// run queues f, counting it in wg until it has run.
func (q *handoffQueue) run(wg *sync.WaitGroup, f func()) {
	q.mu.Lock()
	prev := q.tail
	done := make(chan struct{})
	q.tail = done
	q.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		if prev != nil {
			<-prev
		}
		f()
	}()
}

// wait waits until every function queued so far has run.
func (q *handoffQueue) wait() {
	q.mu.Lock()
	tail := q.tail
	q.mu.Unlock()
	if tail != nil {
		<-tail
	}
}

// lookup returns the group for id if this broker coordinates it; create makes an Empty group
// when there is none. c.mu must be held.
func (c *coordinator) lookup(id string, create bool) (*group.Group, *kerr.Error) {
	p := partitionFor(id, c.numPartitions())
	if c.loading[p] {
		return nil, kerr.CoordinatorLoadInProgress
	}
	if !c.owned[p] {
		return nil, kerr.NotCoordinator
	}
	g := c.groups[id]
	if g == nil && create {
		g = group.New(id, c.cfg, c.b.now())
		c.groups[id] = g
		c.books[g] = &groupBook{stored: g.MetaVersion()}
	}
	return g, nil
}

// do runs op on group id under the coordinator lock, persists the group if op changed its
// metadata, then runs the replies op queued. create makes the group if it does not exist.
func (c *coordinator) do(id string, create bool, op func(g *group.Group, now time.Time)) *kerr.Error {
	if err := c.ensureReady(); err != nil {
		return err
	}
	c.mu.Lock()
	g, err := c.lookup(id, create)
	if err != nil || g == nil {
		c.mu.Unlock()
		if err == nil {
			err = kerr.UnknownMemberID
		}
		return err
	}
	op(g, c.b.now())
	out := c.settle(g)
	c.mu.Unlock()
	for _, f := range out {
		f()
	}
	return nil
}

// settle persists g if its metadata moved, forgets it when it is empty with no offsets, and
// returns its queued replies. c.mu must be held.
func (c *coordinator) settle(g *group.Group) []func() {
	bk := c.books[g]
	if v := g.MetaVersion(); v != bk.stored {
		if err := c.storeGroup(g); err != nil {
			c.b.log.Warn("store group metadata", "group", g.ID, "err", err)
		} else {
			bk.stored = v
		}
	}
	if g.Rebalances != bk.rebalances {
		c.b.metrics.rebalances.Add(float64(g.Rebalances - bk.rebalances))
		bk.rebalances = g.Rebalances
	}
	if g.State == group.Empty && g.IsEmpty() && len(g.Offsets) == 0 && g.Generation == 0 {
		// A group that never got anywhere (every joiner left before a generation) leaves no
		// trace, as in Kafka.
		delete(c.groups, g.ID)
		delete(c.books, g)
	}
	return g.TakeOutbox()
}

// tickLoop drives group timers until the broker stops.
func (c *coordinator) tickLoop() {
	defer c.b.bgWG.Done()
	t := time.NewTicker(groupTickInterval)
	defer t.Stop()
	for {
		select {
		case <-c.b.stop:
			c.shutdown()
			return
		case <-t.C:
			c.tick(c.b.now())
		}
	}
}

func (c *coordinator) tick(now time.Time) {
	var out []func()
	c.mu.Lock()
	for _, g := range c.groups {
		g.Tick(now)
		out = append(out, c.settle(g)...)
	}
	c.mu.Unlock()
	for _, f := range out {
		f()
	}
}

// shutdown answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR so their
// handlers return and connections can close.
func (c *coordinator) shutdown() {
	var out []func()
	c.mu.Lock()
	for _, g := range c.groups {
		g.Kill(c.b.now(), kerr.NotCoordinator)
		out = append(out, g.TakeOutbox()...)
	}
	c.mu.Unlock()
	for _, f := range out {
		f()
	}
}

// newMemberID makes a member id the way Kafka does: client id, a dash, a random UUID.
func newMemberID(clientID string) string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", clientID, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
