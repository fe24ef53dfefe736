package broker

// Fetch (key 1), versions 4-16.
//
// Behaviour: reads whole record batches from the segment files starting with the batch that
// holds FetchOffset, never past the high watermark (read_uncommitted) or last stable offset
// (read_committed: the first offset of the oldest open transaction, or of a completed one
// whose marker is not yet committed, capped at the high watermark), at most the
// partition's PartitionMaxBytes and the request's MaxBytes in total, except that the first
// batch of the first non-empty partition is returned whole even when larger (KIP-74). Long
// poll: when fewer than MinBytes are available the request waits up to MaxWaitMs for appends.
// LastStableOffset is always reported; read_committed fetches also get AbortedTransactions:
// every aborted transaction (producer id, first offset) overlapping [FetchOffset, LSO), from
// the partition's aborted-transaction index, so the client drops their records.
// Record data goes to the socket with sendfile (zerocopy.go). Topics are addressed by name
// (v4-12) or topic id (v13+). CurrentLeaderEpoch (v9+) is checked: older than ours is
// FENCED_LEADER_EPOCH, newer is UNKNOWN_LEADER_EPOCH. An offset beyond the log end or before
// the log start is OFFSET_OUT_OF_RANGE; between the high watermark and the log end it returns
// no data.
//
// Replica fetches (ReplicaID, or ReplicaState at v15+, >= 0) come from followers: they read
// up to the log end offset instead of the high watermark, report the follower's log end
// offset (its FetchOffset) to the leader's replication state, and get a DivergingEpoch
// instead of data when LastFetchedEpoch shows the follower's log diverged (KIP-320). In a
// replicated cluster only the leader serves fetches (NOT_LEADER_OR_FOLLOWER elsewhere).
//
// Sessions (KIP-227, v7+): SessionID and SessionEpoch are handled as Kafka's FetchManager
// does (fetch_session.go): epoch -1 is a sessionless full fetch, epoch 0 a full fetch that
// opens a session when the cache (max.incremental.fetch.session.cache.slots, default 1000)
// has room, any other epoch an incremental fetch that updates the session's partitions,
// drops its ForgottenTopics, reads every session partition and answers only those with
// records, a changed high watermark or log start offset, or an error;
// FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH and FETCH_SESSION_TOPIC_ID_ERROR
// come back top-level with no partitions. A request with no partitions is answered at once.
//
// Differences from Kafka: none a client can observe with Kafka's default configuration. The
// replica fetcher of this broker does not use sessions (Kafka's does); no preferred read
// replica (KIP-392), which Kafka also never names without a replica.selector.class.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleFetch(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.FetchRequest)
	wait := time.Duration(r.MaxWaitMillis) * time.Millisecond
	if wait < 0 {
		wait = 0
	}
	replica := r.ReplicaID
	if req.version >= 15 {
		replica = r.ReplicaState.ID
	}
	start := time.Now()
	fc := c.b.fetchSessions.newContext(r, req.version, replica >= 0, start.UnixMilli())
	if fc.mode == fetchSessionError || len(fc.targets) == 0 {
		wait = 0
	}
	deadline := start.Add(wait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	track := replica >= 0
	var resp *kmsg.FetchResponse
	for {
		arrived := c.b.arrivals.wait()
		var size int64
		var hasError bool
		resp, size, hasError = c.buildFetch(r, fc.targets, req.version, replica, track)
		track = false
		if size >= int64(r.MinBytes) || hasError || wait == 0 || !time.Now().Before(deadline) {
			break
		}
		c.releaseParts()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-arrived:
			continue
		case <-timer.C:
			resp, _, _ = c.buildFetch(r, fc.targets, req.version, replica, false)
		case <-c.b.stop:
			return nil, errCloseConn
		}
		break
	}
	c.b.fetchSessions.finish(fc, resp, time.Now().UnixMilli())
	return resp, nil
}

// buildFetch reads every target partition once, in order. It returns the response (one topic
// entry per run of targets of the same topic), the record bytes it holds and whether any
// partition has an error (which ends a long poll early, as in Kafka). replica is the fetching
// follower (-1 for consumers); track records its progress (the first pass of a long poll
// only).
func (c *conn) buildFetch(r *kmsg.FetchRequest, targets []fetchTarget, version int16, replica int32, track bool) (*kmsg.FetchResponse, int64, bool) {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(version)
	maxBytes := int64(r.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	var total int64
	hasError := false
	minOne := true
	readCommitted := r.IsolationLevel == 1
	for i := range targets {
		t := &targets[i]
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != t.topic || resp.Topics[n-1].TopicID != t.topicID {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = t.topic, t.topicID
			resp.Topics = append(resp.Topics, st)
		}
		st := &resp.Topics[len(resp.Topics)-1]
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = t.part.Partition
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
		var p *partition
		var perr *kerr.Error
		if version >= 13 {
			p, perr = c.b.partitionByID(t.topicID, t.part.Partition)
		} else {
			p, perr = c.b.partitionFor(t.topic, t.part.Partition)
		}
		if perr == nil {
			var n int64
			n, perr = c.readPartition(p, t.part, &sp, maxBytes-total, &minOne, readCommitted, replica, track)
			total += n
		}
		if perr != nil {
			sp.ErrorCode = perr.Code
			hasError = true
		}
		if sp.RecordBatches == nil {
			sp.RecordBatches = []byte{} // empty, not null: librdkafka rejects a null record set
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return resp, total, hasError
}

// readPartition fills sp from p's log and returns the record bytes it added. budget is what is
// left of the response's MaxBytes.
func (c *conn) readPartition(p *partition, rp kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition, budget int64, minOne *bool, readCommitted bool, replica int32, track bool) (int64, *kerr.Error) {
	if !p.isLeader(c.b.cfg.NodeID) {
		return 0, kerr.NotLeaderForPartition
	}
	epoch := p.LeaderEpoch()
	if rp.CurrentLeaderEpoch >= 0 {
		if rp.CurrentLeaderEpoch < epoch {
			return 0, kerr.FencedLeaderEpoch
		}
		if rp.CurrentLeaderEpoch > epoch {
			return 0, kerr.UnknownLeaderEpoch
		}
	}
	hw := p.HighWatermark()
	lso := p.log.LastStableOffset(hw)
	sp.HighWatermark = hw
	sp.LastStableOffset = lso
	sp.LogStartOffset = p.LogStartOffset()
	leo := p.LogEndOffset()
	maxOffset := hw
	if readCommitted && replica < 0 {
		maxOffset = lso
		sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		for _, a := range p.log.AbortedTxns(rp.FetchOffset, lso) {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			sp.AbortedTransactions = append(sp.AbortedTransactions, at)
		}
	}
	if replica < 0 && c.b.readAboveHW {
		maxOffset, sp.HighWatermark, sp.LastStableOffset = leo, leo, leo
	}
	if replica >= 0 {
		if rp.LastFetchedEpoch >= 0 {
			e, end := p.log.EndOffsetForEpoch(rp.LastFetchedEpoch)
			if e >= 0 && (e != rp.LastFetchedEpoch || end < rp.FetchOffset) {
				sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = e, end
				return 0, nil
			}
		}
		if rp.FetchOffset > leo || rp.FetchOffset < sp.LogStartOffset {
			return 0, kerr.OffsetOutOfRange
		}
		if track {
			c.b.onFollowerFetch(p, replica, rp.FetchOffset, rp.LogStartOffset, c.b.now())
			sp.HighWatermark = p.HighWatermark()
		}
		maxOffset = leo
	}
	if rp.FetchOffset < sp.LogStartOffset || rp.FetchOffset > leo {
		return 0, kerr.OffsetOutOfRange
	}
	limit := int64(rp.PartitionMaxBytes)
	if limit > budget {
		limit = budget
	}
	if rp.FetchOffset >= maxOffset || (limit <= 0 && !*minOne) {
		return 0, nil
	}
	if limit < 0 {
		limit = 0
	}
	res, err := p.log.Read(rp.FetchOffset, int(limit), maxOffset, *minOne)
	if err != nil {
		return 0, c.b.onReadError(p, err)
	}
	if res.Size == 0 {
		res.Release()
		return 0, nil
	}
	*minOne = false
	c.b.metrics.bytesOut.WithLabelValues(p.topic.name).Add(float64(res.Size))
	if zeroCopy {
		sp.RecordBatches = c.addRecords(res)
		return res.Size, nil
	}
	buf, err := res.Bytes()
	res.Release()
	if err != nil {
		return 0, storageError(err)
	}
	sp.RecordBatches = buf
	return int64(len(buf)), nil
}
