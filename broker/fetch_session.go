package broker

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Incremental fetch sessions (KIP-227), as Kafka's FetchManager and FetchSessionCache keep
// them. A Fetch request with SessionEpoch -1 is sessionless (any SessionID it names is
// closed); epoch 0 is a full fetch that closes the session it names and asks for a new one,
// which the broker creates when the cache has room (or can evict) and reports in the
// response's SessionID; any other epoch is an incremental fetch of session SessionID at that
// epoch: its partitions update or join the session, ForgottenTopics leave it, every session
// partition is read, and the response carries only partitions with records, a changed high
// watermark or log start offset, an error or a diverging epoch. A session is a client's
// sequence of requests, so the epoch must be the session's: otherwise
// INVALID_FETCH_SESSION_EPOCH, and FETCH_SESSION_ID_NOT_FOUND for an unknown id (both
// top-level, with no partitions). The cache holds max.incremental.fetch.session.cache.slots
// sessions (0 disables them); a new session evicts a session unused for 2 minutes, or else
// the least valuable evictable one (fewer partitions, not a follower's) if it is worth less
// than the new one, where a session becomes evictable by consumers only 2 minutes after its
// creation (followers' requests may evict consumers' sessions at once).

// fetchSessionEvictionMs is Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS.
const fetchSessionEvictionMs = 120_000

// fetchMode is how a Fetch request relates to a session (Kafka's FetchContext kinds).
type fetchMode int

const (
	fetchSessionless fetchMode = iota
	fetchFull
	fetchIncremental
	fetchSessionError
)

var fetchModeNames = [...]string{"sessionless", "full", "incremental", "error"}

// fetchTarget is one partition a Fetch reads, with the client's fetch parameters.
type fetchTarget struct {
	topic   string   // v4-12
	topicID [16]byte // v13+
	part    kmsg.FetchRequestTopicPartition
}

// sessionKey names a session partition: by topic name before v13, by topic id after.
type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

func (t *fetchTarget) key() sessionKey { return sessionKey{t.topic, t.topicID, t.part.Partition} }

// cachedPartition is a session partition: its fetch parameters and what the client was last
// told of its high watermark and log start offset.
type cachedPartition struct {
	target         fetchTarget
	highWatermark  int64
	logStartOffset int64
}

// fetchSession is one client's incremental fetch session.
type fetchSession struct {
	id         int32
	privileged bool // a follower's
	topicIDs   bool // created by a v13+ request
	epoch      int32
	creationMs int64
	lastUsedMs int64
	parts      []*cachedPartition // fetch order
	byKey      map[sessionKey]*cachedPartition
	// counted is how many partitions the cache's partition count holds for this session.
	counted int
	// evictableByFollowers and evictableByAll are fixed when the session is last used, as in
	// Kafka's FetchSessionCache.touch.
	evictableByFollowers, evictableByAll bool
}

// fetchContext is what a Fetch request reads and how its response relates to its session.
type fetchContext struct {
	mode      fetchMode
	errorCode int16
	targets   []fetchTarget
	session   *fetchSession // incremental
	reqEpoch  int32
	topicIDs  bool
	follower  bool
}

// sessionMetrics are the cache's Prometheus series (Kafka's FetchSessionCache metrics plus a
// count of requests by mode, which shows whether clients use sessions at all).
type sessionMetrics struct {
	sessions   prometheus.Gauge
	partitions prometheus.Gauge
	evictions  prometheus.Counter
	requests   *prometheus.CounterVec
}

// fetchSessionCache is the broker's bounded set of fetch sessions. All its state is guarded
// by mu; partitions are read outside it from a fetchContext's targets.
type fetchSessionCache struct {
	mu            sync.Mutex
	maxSlots      int
	sessions      map[int32]*fetchSession
	numPartitions int
	rng           *rand.Rand
	m             sessionMetrics
}

func newFetchSessionCache(maxSlots int, rng *rand.Rand, m sessionMetrics) *fetchSessionCache {
	return &fetchSessionCache{maxSlots: maxSlots, sessions: map[int32]*fetchSession{}, rng: rng, m: m}
}

// nextSessionEpoch is Kafka's FetchMetadata.nextEpoch.
func nextSessionEpoch(epoch int32) int32 {
	switch {
	case epoch < 0:
		return -1
	case epoch == math.MaxInt32:
		return 1
	}
	return epoch + 1
}

// newContext classifies a Fetch request and updates the session it names (Kafka's
// FetchManager.newContext).
func (c *fetchSessionCache) newContext(r *kmsg.FetchRequest, version int16, follower bool, nowMs int64) *fetchContext {
	fc := &fetchContext{reqEpoch: r.SessionEpoch, topicIDs: version >= 13, follower: follower}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() { c.m.requests.WithLabelValues(fetchModeNames[fc.mode]).Inc() }()
	if r.SessionEpoch == 0 || r.SessionEpoch == -1 {
		if r.SessionID != 0 {
			c.remove(c.sessions[r.SessionID])
		}
		fc.mode = fetchSessionless
		if r.SessionEpoch == 0 {
			fc.mode = fetchFull
		}
		fc.targets = requestTargets(r)
		return fc
	}
	s := c.sessions[r.SessionID]
	switch {
	case s == nil:
		fc.mode, fc.errorCode = fetchSessionError, kerr.FetchSessionIDNotFound.Code
		return fc
	case s.epoch != r.SessionEpoch:
		fc.mode, fc.errorCode = fetchSessionError, kerr.InvalidFetchSessionEpoch.Code
		return fc
	case s.topicIDs != fc.topicIDs:
		fc.mode, fc.errorCode = fetchSessionError, kerr.FetchSessionTopicIDError.Code
		return fc
	}
	for _, t := range requestTargets(r) {
		if cp := s.byKey[t.key()]; cp != nil {
			cp.target.part = t.part
			continue
		}
		cp := &cachedPartition{target: t, highWatermark: -1, logStartOffset: -1}
		s.byKey[t.key()] = cp
		s.parts = append(s.parts, cp)
	}
	for _, ft := range r.ForgottenTopics {
		for _, p := range ft.Partitions {
			k := sessionKey{topic: ft.Topic, partition: p}
			if fc.topicIDs {
				k = sessionKey{topicID: ft.TopicID, partition: p}
			}
			if cp := s.byKey[k]; cp != nil {
				delete(s.byKey, k)
				s.parts = deletePart(s.parts, cp)
			}
		}
	}
	if len(s.parts) == 0 {
		c.remove(s)
		fc.mode = fetchSessionless
		return fc
	}
	c.touch(s, nowMs)
	s.epoch = nextSessionEpoch(s.epoch)
	fc.mode, fc.session = fetchIncremental, s
	fc.targets = make([]fetchTarget, len(s.parts))
	for i, cp := range s.parts {
		fc.targets[i] = cp.target
	}
	return fc
}

// requestTargets flattens the request's partitions in request order.
func requestTargets(r *kmsg.FetchRequest) []fetchTarget {
	n := 0
	for _, rt := range r.Topics {
		n += len(rt.Partitions)
	}
	out := make([]fetchTarget, 0, n)
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			out = append(out, fetchTarget{topic: rt.Topic, topicID: rt.TopicID, part: rp})
		}
	}
	return out
}

// deletePart removes cp from parts, keeping the order of the rest.
func deletePart(parts []*cachedPartition, cp *cachedPartition) []*cachedPartition {
	for i, p := range parts {
		if p == cp {
			return append(parts[:i], parts[i+1:]...)
		}
	}
	return parts
}

// finish completes resp (whose partitions are fc.targets' in order) for the session: the
// top-level error and session id, a new session for a full fetch, and for an incremental one
// only the partitions the client must hear about, whose cached state it updates; partitions
// that returned records move to the end of the session's fetch order (Kafka's
// FullFetchContext and IncrementalFetchContext.updateAndGenerateResponseData).
func (c *fetchSessionCache) finish(fc *fetchContext, resp *kmsg.FetchResponse, nowMs int64) {
	switch fc.mode {
	case fetchSessionError:
		resp.ErrorCode, resp.SessionID, resp.Topics = fc.errorCode, 0, nil
	case fetchSessionless:
		resp.SessionID = 0
	case fetchFull:
		resp.SessionID = c.maybeCreate(fc, resp, nowMs)
	case fetchIncremental:
		c.mu.Lock()
		defer c.mu.Unlock()
		s := fc.session
		if s.epoch != nextSessionEpoch(fc.reqEpoch) {
			resp.ErrorCode, resp.SessionID, resp.Topics = kerr.InvalidFetchSessionEpoch.Code, 0, nil
			return
		}
		resp.SessionID = s.id
		var moved []*cachedPartition
		i := 0
		topics := resp.Topics[:0]
		for _, rt := range resp.Topics {
			parts := rt.Partitions[:0]
			for _, rp := range rt.Partitions {
				cp := s.byKey[fc.targets[i].key()]
				i++
				if cp == nil || !cp.mustRespond(&rp) {
					continue
				}
				parts = append(parts, rp)
				if len(rp.RecordBatches) > 0 {
					moved = append(moved, cp)
				}
			}
			if len(parts) > 0 {
				rt.Partitions = parts
				topics = append(topics, rt)
			}
		}
		resp.Topics = topics
		for _, cp := range moved {
			s.parts = append(deletePart(s.parts, cp), cp)
		}
	}
}

// mustRespond reports whether an incremental response must carry this partition, and records
// what the client is told (Kafka's CachedPartition.maybeUpdateResponseData).
func (cp *cachedPartition) mustRespond(rp *kmsg.FetchResponseTopicPartition) bool {
	must := len(rp.RecordBatches) > 0 || rp.DivergingEpoch.Epoch >= 0 || rp.PreferredReadReplica >= 0
	if cp.highWatermark != rp.HighWatermark {
		must, cp.highWatermark = true, rp.HighWatermark
	}
	if cp.logStartOffset != rp.LogStartOffset {
		must, cp.logStartOffset = true, rp.LogStartOffset
	}
	if rp.ErrorCode != 0 {
		must, cp.highWatermark = true, -1 // resend once the error clears
	}
	return must
}

// maybeCreate makes a session of a full fetch's partitions when there is room or a session
// can be evicted, and returns its id (0 when none was created).
func (c *fetchSessionCache) maybeCreate(fc *fetchContext, resp *kmsg.FetchResponse, nowMs int64) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) >= c.maxSlots && !c.tryEvict(fc.follower, len(fc.targets), nowMs) {
		return 0
	}
	s := &fetchSession{privileged: fc.follower, topicIDs: fc.topicIDs, epoch: 1, creationMs: nowMs,
		byKey: make(map[sessionKey]*cachedPartition, len(fc.targets))}
	i := 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			t := fc.targets[i]
			i++
			if s.byKey[t.key()] != nil {
				continue
			}
			cp := &cachedPartition{target: t, highWatermark: rp.HighWatermark, logStartOffset: rp.LogStartOffset}
			s.byKey[t.key()] = cp
			s.parts = append(s.parts, cp)
		}
	}
	for {
		s.id = c.rng.Int32N(math.MaxInt32-1) + 1
		if c.sessions[s.id] == nil {
			break
		}
	}
	c.sessions[s.id] = s
	c.touch(s, nowMs)
	c.m.sessions.Set(float64(len(c.sessions)))
	return s.id
}

// touch marks s used at nowMs and recomputes its evictability. mu must be held.
func (c *fetchSessionCache) touch(s *fetchSession, nowMs int64) {
	s.lastUsedMs = nowMs
	old := nowMs-s.creationMs > fetchSessionEvictionMs
	s.evictableByFollowers = !s.privileged || old
	s.evictableByAll = old
	c.numPartitions += len(s.parts) - s.counted
	s.counted = len(s.parts)
	c.m.partitions.Set(float64(c.numPartitions))
}

// tryEvict makes room for a new session of size partitions: it evicts a session unused for
// longer than the eviction time, or else the evictable session of least value (consumers'
// before followers', then fewer partitions, then lower id) when the new one is worth more.
// mu must be held.
func (c *fetchSessionCache) tryEvict(follower bool, size int, nowMs int64) bool {
	var lru, cheapest *fetchSession
	for _, s := range c.sessions {
		if lru == nil || s.lastUsedMs < lru.lastUsedMs || s.lastUsedMs == lru.lastUsedMs && s.id < lru.id {
			lru = s
		}
		if (follower && s.evictableByFollowers || s.evictableByAll) && (cheapest == nil || lessValuable(s, cheapest)) {
			cheapest = s
		}
	}
	if lru == nil {
		return false
	}
	if nowMs-lru.lastUsedMs > fetchSessionEvictionMs {
		c.remove(lru)
		c.m.evictions.Inc()
		return true
	}
	newcomer := &fetchSession{privileged: follower, parts: make([]*cachedPartition, size)}
	if cheapest == nil || lessValuable(newcomer, cheapest) {
		return false
	}
	c.remove(cheapest)
	c.m.evictions.Inc()
	return true
}

// lessValuable orders sessions as Kafka's EvictableKey: consumers' before followers', then by
// partition count, then by id (a newcomer has id 0).
func lessValuable(a, b *fetchSession) bool {
	if a.privileged != b.privileged {
		return !a.privileged
	}
	if len(a.parts) != len(b.parts) {
		return len(a.parts) < len(b.parts)
	}
	return a.id < b.id
}

// remove drops s (nil is a no-op). mu must be held.
func (c *fetchSessionCache) remove(s *fetchSession) {
	if s == nil || c.sessions[s.id] != s {
		return
	}
	delete(c.sessions, s.id)
	c.numPartitions -= s.counted
	c.m.sessions.Set(float64(len(c.sessions)))
	c.m.partitions.Set(float64(c.numPartitions))
}
