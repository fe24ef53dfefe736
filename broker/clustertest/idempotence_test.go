package clustertest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// rawProducer sends hand-built batches to one broker without client retries, so a test
// decides exactly what is retried.
type rawProducer struct {
	t   *testing.T
	cl  *kgo.Client
	pid int64 // -1: not idempotent
	txn bool  // batches carry the transactional attribute
}

func newRawProducer(t *testing.T, c *clustertest.Cluster, idempotent bool) *rawProducer {
	t.Helper()
	p := &rawProducer{t: t, cl: c.Client(kgo.RequestRetries(0)), pid: -1}
	if !idempotent {
		return p
	}
	c.CheckFor(20*time.Second, "a producer id", func() error {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.ProducerID, req.ProducerEpoch = -1, -1
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, p.cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return err
		}
		p.pid = resp.ProducerID
		return nil
	})
	return p
}

// batch builds an uncompressed batch of values with sequence seq (epoch 0) for the producer.
func (p *rawProducer) batch(seq int32, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: p.pid, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(values)), Records: recs}
	if p.pid >= 0 {
		rb.ProducerEpoch, rb.FirstSequence = 0, seq
	}
	if p.txn {
		rb.Attributes |= 0x10
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// produce sends batch with acks=all to broker id and returns the partition's answer.
func (p *rawProducer) produce(id int32, topic string, partition int32, b []byte, timeout time.Duration) (int64, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, int32(timeout.Milliseconds())
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, slices.Clone(b)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	if err := p.cl.Ping(ctx); err != nil {
		return -1, err
	}
	resp, err := p.cl.Broker(int(id)).RetriableRequest(ctx, req)
	if err != nil {
		return -1, err
	}
	sp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	return sp.BaseOffset, kerr.ErrorForCode(sp.ErrorCode)
}

// copiesOf counts the records of the partition whose value is v.
func copiesOf(t *testing.T, c *clustertest.Cluster, topic string, partition int32, minEnd int64, v string) int {
	n := 0
	for _, got := range readAll(t, c, topic, partition, minEnd) {
		if got == v {
			n++
		}
	}
	return n
}

// TestRetryAfterFailedAcksAll: an acks=all produce fails after the leader appended the batch
// (the followers cannot fetch: REQUEST_TIMED_OUT, or NOT_ENOUGH_REPLICAS_AFTER_APPEND once the
// ISR shrinks below min.insync.replicas). The client retries the same batch after the
// followers are back: an idempotent producer's retry is recognised and the record is in the
// log once; without idempotence it is there twice, as in Kafka.
func TestRetryAfterFailedAcksAll(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Set("replica.lag.time.max.ms", "2000"))
	c.CreateTopic("retry", 1, 3, map[string]string{"min.insync.replicas": "2"})
	for _, cause := range []*kerr.Error{kerr.RequestTimedOut, kerr.NotEnoughReplicasAfterAppend} {
		for _, idempotent := range []bool{true, false} {
			t.Run(fmt.Sprintf("cause=%s,idempotent=%v", cause.Message, idempotent), func(t *testing.T) {
				leader := c.WaitLeader("retry", 0)
				followers := c.Others(leader)
				c.CheckFor(30*time.Second, "a full ISR", func() error {
					st, err := c.PartitionAt(leader, "retry", 0)
					if err != nil || len(st.ISR) != 3 {
						return errf("state %+v, %v", st, err)
					}
					return nil
				})
				p := newRawProducer(t, c, idempotent)
				// A committed write first: the followers are fetching and caught up right now.
				warm := newRawProducer(t, c, false)
				if _, err := warm.produce(leader, "retry", 0, warm.batch(0, "warm-up"), 10*time.Second); err != nil {
					t.Fatalf("warm-up write: %v", err)
				}
				val := fmt.Sprintf("%s-%v-%d", cause.Message, idempotent, time.Now().UnixNano())
				b := p.batch(0, val)
				for _, f := range followers {
					c.Cut(f, leader)
				}
				healed := false
				heal := func() {
					if !healed {
						healed = true
						for _, f := range followers {
							c.Heal(f, leader)
						}
					}
				}
				defer heal()
				timeout := 300 * time.Millisecond
				if cause == kerr.NotEnoughReplicasAfterAppend {
					timeout = 15 * time.Second // outlasts replica.lag.time.max.ms: the ISR shrinks first
				}
				start := time.Now()
				first, firstErr := p.produce(leader, "retry", 0, b, timeout)
				if !errors.Is(firstErr, cause) {
					t.Fatalf("first attempt after %s: %v, want %v", time.Since(start), firstErr, cause)
				}
				heal()
				var off int64
				c.CheckFor(40*time.Second, "a successful retry", func() error {
					var err error
					off, err = p.produce(leader, "retry", 0, b, 5*time.Second)
					return err
				})
				want := 1
				if !idempotent {
					want = 2
				}
				if n := copiesOf(t, c, "retry", 0, off+1, val); n != want {
					t.Fatalf("record is in the log %d times, want %d (retry answered offset %d, first attempt %d)", n, want, off, first)
				}
				t.Logf("leader %d: first attempt %v; retry answered offset %d; %d cop(ies) in the log", leader, firstErr, off, want)
			})
		}
	}
}

// TestIdempotenceSurvivesLeaderKill: an idempotent producer's batch is committed, the leader
// is killed before the producer sees the answer, and the producer retries against the new
// leader: the new leader, which built its producer state from the replicated log, answers
// with the original offset and writes nothing.
func TestIdempotenceSurvivesLeaderKill(t *testing.T) {
	c := clustertest.Start(t, 3)
	c.CreateTopic("idemkill", 1, 3, map[string]string{"min.insync.replicas": "2"})
	leader := c.WaitLeader("idemkill", 0)
	p := newRawProducer(t, c, true)
	var offs []int64
	for seq := int32(0); seq < 3; seq++ {
		var off int64
		c.CheckFor(20*time.Second, fmt.Sprint("batch ", seq, " acknowledged"), func() error {
			var err error
			off, err = p.produce(leader, "idemkill", 0, p.batch(seq, fmt.Sprint("v", seq)), 10*time.Second)
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return err // the leader has not applied the topic yet
			}
			if err != nil {
				t.Fatalf("batch %d: %v", seq, err)
			}
			return nil
		})
		offs = append(offs, off)
	}
	c.Kill(leader)
	var next int32
	c.CheckFor(30*time.Second, "a new leader", func() error {
		st, err := c.Partition("idemkill", 0)
		if err != nil || st.Leader < 0 || st.Leader == leader {
			return errf("state %+v, %v", st, err)
		}
		next = st.Leader
		return nil
	})
	var off int64
	c.CheckFor(30*time.Second, "the retry answered by the new leader", func() error {
		var err error
		off, err = p.produce(next, "idemkill", 0, p.batch(2, "v2"), 5*time.Second)
		return err
	})
	if off != offs[2] {
		t.Fatalf("retry on new leader %d answered offset %d, want the original %d", next, off, offs[2])
	}
	if _, err := p.produce(next, "idemkill", 0, p.batch(5, "v5"), 5*time.Second); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("a gap on the new leader: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", err)
	}
	off3, err := p.produce(next, "idemkill", 0, p.batch(3, "v3"), 5*time.Second)
	if err != nil || off3 != offs[2]+1 {
		t.Fatalf("next batch on the new leader: offset %d, %v; want %d", off3, err, offs[2]+1)
	}
	if n := copiesOf(t, c, "idemkill", 0, off3+1, "v2"); n != 1 {
		t.Fatalf("retried record is in the log %d times, want once", n)
	}
	t.Logf("leader %d killed; new leader %d recognised the retry of offset %d", leader, next, off)
}
