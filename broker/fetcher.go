package broker

// Follower side of replication: one fetcher per leader broker (Kafka's replica fetcher
// thread with num.replica.fetchers=1) fetches every partition this broker follows from that
// leader in one Fetch request (v12, by topic name, with LastFetchedEpoch so the leader
// answers a divergence with DivergingEpoch, KIP-320/KIP-595), appends what it gets as a
// follower, truncates divergent suffixes and takes the leader's high watermark.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/replica"
	"github.com/kchaos/kchaos/broker/storage"
)

// replicaFetchVersion is the Fetch version followers use: the last one addressing topics by
// name, and the first with LastFetchedEpoch and DivergingEpoch.
const replicaFetchVersion = 12

type fetcher struct {
	b      *Broker
	leader int32
	pc     *peerClient

	mu    chan struct{} // a one-slot lock that never blocks close
	parts map[*partition]time.Time
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

// fetcherFor returns the fetcher for leader, starting it if needed.
func (cl *cluster) fetcherFor(leader int32) *fetcher {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	f := cl.fetchers[leader]
	if f == nil {
		f = &fetcher{b: cl.b, leader: leader, pc: newPeerClient(cl.b.cfg.NodeID, leader, cl.resolve),
			mu: make(chan struct{}, 1), parts: map[*partition]time.Time{}, wake: make(chan struct{}, 1),
			stop: make(chan struct{}), done: make(chan struct{})}
		cl.fetchers[leader] = f
		go f.run()
	}
	return f
}

// follow makes p fetch from leader, and from no other fetcher; leader < 0 stops fetching p.
func (cl *cluster) follow(p *partition, leader int32) {
	cl.mu.Lock()
	fs := make([]*fetcher, 0, len(cl.fetchers))
	for id, f := range cl.fetchers {
		if id != leader {
			fs = append(fs, f)
		}
	}
	cl.mu.Unlock()
	for _, f := range fs {
		f.remove(p)
	}
	if leader >= 0 {
		cl.fetcherFor(leader).add(p)
	}
}

func (f *fetcher) lock()   { f.mu <- struct{}{} }
func (f *fetcher) unlock() { <-f.mu }

func (f *fetcher) add(p *partition) {
	f.lock()
	f.parts[p] = time.Time{}
	f.unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(p *partition) {
	f.lock()
	delete(f.parts, p)
	f.unlock()
}

// close stops the fetcher and waits for it.
func (f *fetcher) close() {
	close(f.stop)
	f.pc.Close()
	<-f.done
}

// fetchPartState is one partition of a fetch in flight, with the state the request was built on.
type fetchPartState struct {
	p           *partition
	leaderEpoch int32
	offset      int64
}

func (f *fetcher) run() {
	defer close(f.done)
	b := f.b
	wait := time.Duration(b.cfg.propInt("replica.fetch.wait.max.ms")) * time.Millisecond
	backoff := time.Duration(b.cfg.propInt("replica.fetch.backoff.ms")) * time.Millisecond
	for {
		req, states := f.build(wait)
		if len(states) == 0 {
			select {
			case <-f.stop:
				return
			case <-f.wake:
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait+3*time.Second)
		resp, err := f.pc.Request(ctx, req, wait)
		cancel()
		select {
		case <-f.stop:
			return
		default:
		}
		if err != nil {
			b.log.Debug("replica fetch", "leader", f.leader, "err", err)
			select {
			case <-f.stop:
				return
			case <-time.After(backoff):
			}
			continue
		}
		f.handle(resp.(*kmsg.FetchResponse), states)
	}
}

// build makes the next Fetch request from the partitions not backing off.
func (f *fetcher) build(wait time.Duration) (*kmsg.FetchRequest, map[string]map[int32]fetchPartState) {
	b := f.b
	req := kmsg.NewPtrFetchRequest()
	req.Version = replicaFetchVersion
	req.ReplicaID = b.cfg.NodeID
	req.MaxWaitMillis = int32(wait / time.Millisecond)
	req.MinBytes = int32(b.cfg.propInt("replica.fetch.min.bytes"))
	req.MaxBytes = int32(b.cfg.propInt("replica.fetch.response.max.bytes"))
	req.SessionEpoch = -1
	states := map[string]map[int32]fetchPartState{}
	topics := map[string]int{}
	now := time.Now()
	f.lock()
	for p, until := range f.parts {
		// A partition recovering from stored corruption is not fetched until its log is
		// truncated at the bad batch: a fetch offset from the damaged log's end would put this
		// replica back in the ISR before the truncation takes that end away.
		if now.Before(until) || p.recovering.Load() {
			continue
		}
		name := p.topic.name
		i, ok := topics[name]
		if !ok {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = name
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			topics[name] = i
			states[name] = map[int32]fetchPartState{}
		}
		st := fetchPartState{p: p, leaderEpoch: p.LeaderEpoch(), offset: p.LogEndOffset()}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.index
		rp.CurrentLeaderEpoch = st.leaderEpoch
		rp.FetchOffset = st.offset
		rp.LastFetchedEpoch = -1
		if e, ok := p.log.LatestEpoch(); ok {
			rp.LastFetchedEpoch = e
		}
		rp.LogStartOffset = p.LogStartOffset()
		rp.PartitionMaxBytes = int32(b.cfg.propInt("replica.fetch.max.bytes"))
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		states[name][p.index] = st
	}
	f.unlock()
	if len(states) == 0 {
		return nil, nil
	}
	return req, states
}

// handle applies a fetch response partition by partition.
func (f *fetcher) handle(resp *kmsg.FetchResponse, states map[string]map[int32]fetchPartState) {
	changed := false
	for _, rt := range resp.Topics {
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			st, ok := states[rt.Topic][rp.Partition]
			if !ok {
				continue
			}
			c, delay := f.apply(st, rp)
			changed = changed || c
			if delay > 0 {
				f.lock()
				if _, still := f.parts[st.p]; still {
					f.parts[st.p] = time.Now().Add(delay)
				}
				f.unlock()
			}
		}
	}
	if changed {
		f.b.arrivals.notify()
	}
}

// apply applies one partition's fetch result and returns whether the log or high watermark
// changed and how long to leave the partition out of fetches. The truncation decisions are
// broker/replica's (OnOffsetOutOfRange, OnDivergingEpoch).
func (f *fetcher) apply(st fetchPartState, rp *kmsg.FetchResponseTopicPartition) (bool, time.Duration) {
	b, p := f.b, st.p
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.mu.RLock()
	stale := p.rs.Leader() != f.leader || p.rs.LeaderEpoch() != st.leaderEpoch
	p.mu.RUnlock()
	if stale || p.dropped || p.LogEndOffset() != st.offset {
		return false, 0
	}
	switch rp.ErrorCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		return f.truncate(p, st.offset, replica.OnOffsetOutOfRange(st.offset, rp.LogStartOffset, rp.HighWatermark), "follower out of range, truncated")
	default:
		// Stale or unknown leader epoch, or not (yet) the leader: wait for the metadata image.
		return false, 100 * time.Millisecond
	}
	if div := rp.DivergingEpoch; div.EndOffset >= 0 {
		e, end := p.log.EndOffsetForEpoch(div.Epoch)
		tr := replica.OnDivergingEpoch(replica.EpochEndOffset{Epoch: div.Epoch, EndOffset: div.EndOffset},
			replica.EpochEndOffset{Epoch: e, EndOffset: end}, st.offset)
		return f.truncate(p, st.offset, tr, "truncated divergent suffix")
	}
	changed := false
	if len(rp.RecordBatches) > 0 {
		if _, err := p.log.AppendAsFollower(rp.RecordBatches); err != nil {
			if errors.Is(err, storage.ErrCorrupt) {
				// Damaged in transit: fetch it again soon.
				b.log.Warn("follower append refused a corrupt batch", "topic", p.topic.name, "partition", p.index, "err", err)
				return false, 50 * time.Millisecond
			}
			b.log.Error("follower append", "topic", p.topic.name, "partition", p.index, "err", err)
			return false, time.Second
		}
		changed = true
	}
	if rp.LogStartOffset > p.LogStartOffset() {
		if err := p.log.IncrementLogStartOffset(min(rp.LogStartOffset, p.LogEndOffset())); err != nil {
			b.log.Warn("follower log start offset", "topic", p.topic.name, "partition", p.index, "err", err)
		}
	}
	p.mu.Lock()
	if p.rs.FollowerHighWatermark(rp.HighWatermark, p.LogEndOffset()) {
		changed = true
	}
	p.publish()
	p.mu.Unlock()
	return changed, 0
}

// truncate carries out a truncation the state machine decided for a follower whose log ended
// at from. p.appendMu must be held.
func (f *fetcher) truncate(p *partition, from int64, tr replica.Truncation, msg string) (bool, time.Duration) {
	b := f.b
	var err error
	if tr.Full {
		err = p.log.TruncateFullyAndStartAt(tr.To)
	} else {
		err = p.log.TruncateTo(tr.To)
	}
	if err != nil {
		b.log.Error("follower truncation", "topic", p.topic.name, "partition", p.index, "err", err)
		return false, time.Second
	}
	if from > p.LogEndOffset() {
		b.metrics.truncations.Inc()
	}
	b.log.Info(msg, "topic", p.topic.name, "partition", p.index, "from", from, "to", p.LogEndOffset(), "complete", tr.Complete)
	p.mu.Lock()
	p.rs.Truncated(p.LogEndOffset())
	p.publish()
	p.mu.Unlock()
	return true, 0
}
