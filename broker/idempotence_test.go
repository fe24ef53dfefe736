package broker_test

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/internal/testkit"
)

// producerBatchOf builds an uncompressed batch of n records from producer pid with the given
// epoch and first sequence; txn sets the transactional attribute.
func producerBatchOf(pid int64, epoch int16, seq int32, n int, txn bool) []byte {
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = []byte(fmt.Sprintf("p%d-e%d-s%d", pid, epoch, int(seq)+i))
	}
	b := batch(time.Now().UnixMilli(), vals...)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	if txn {
		binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x10)
	}
	fixCRC(b)
	return b
}

// initProducerID asks for an idempotent producer id.
func initProducerID(t testing.TB, c *rawConn) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(4)
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp := c.roundTrip(req).(*kmsg.InitProducerIDResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("InitProducerId: %v", err)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// produceOne sends one batch and returns the partition answer.
func produceOne(t testing.TB, c *rawConn, topic string, b []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := c.roundTrip(produceReq(-1, topic, 0, b)).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

// expectProduce checks a produce answer's error and, on success, its base offset.
func expectProduce(t testing.TB, what string, sp kmsg.ProduceResponseTopicPartition, want *kerr.Error, offset int64) {
	t.Helper()
	if got := kerr.ErrorForCode(sp.ErrorCode); got != error(want) && !(want == nil && got == nil) {
		t.Fatalf("%s: error %v (%s), want %v", what, got, deref(sp.ErrorMessage), want)
	}
	if want == nil && sp.BaseOffset != offset {
		t.Fatalf("%s: base offset %d, want %d", what, sp.BaseOffset, offset)
	}
}

func TestInitProducerIDIssuesFreshIDs(t *testing.T) {
	p := brokertest.Start(t)
	c := dialRaw(t, p.Addr())
	seen := map[int64]bool{}
	for i := 0; i < 5; i++ {
		id, epoch := initProducerID(t, c)
		if id < 0 || epoch != 0 || seen[id] {
			t.Fatalf("InitProducerId %d: id %d epoch %d (seen before: %v)", i, id, epoch, seen[id])
		}
		seen[id] = true
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(4)
	req.TransactionalID = kmsg.StringPtr("txn-a")
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp := c.roundTrip(req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode == 0 && resp.ProducerID >= 0 && seen[resp.ProducerID] {
		t.Fatalf("transactional InitProducerId reused idempotent id %d", resp.ProducerID)
	}
}

// TestIdempotentProduceRaw drives the sequence checks with hand-built batches and checks that
// the state survives a clean restart and a SIGKILL.
func TestIdempotentProduceRaw(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "idem", 1, nil)
	c := dialRaw(t, p.Addr())
	pid, epoch := initProducerID(t, c)

	expectProduce(t, "first batch", produceOne(t, c, "idem", producerBatchOf(pid, epoch, 0, 3, false)), nil, 0)
	expectProduce(t, "second batch", produceOne(t, c, "idem", producerBatchOf(pid, epoch, 3, 2, false)), nil, 3)
	expectProduce(t, "retry of the first", produceOne(t, c, "idem", producerBatchOf(pid, epoch, 0, 3, false)), nil, 0)
	expectProduce(t, "gap", produceOne(t, c, "idem", producerBatchOf(pid, epoch, 10, 1, false)), kerr.OutOfOrderSequenceNumber, 0)
	expectProduce(t, "unknown producer mid-stream", produceOne(t, c, "idem", producerBatchOf(pid+1, 0, 7, 1, false)), kerr.UnknownProducerID, 0)
	expectProduce(t, "bumped epoch not at 0", produceOne(t, c, "idem", producerBatchOf(pid, epoch+1, 5, 1, false)), kerr.OutOfOrderSequenceNumber, 0)
	expectProduce(t, "bumped epoch", produceOne(t, c, "idem", producerBatchOf(pid, epoch+1, 0, 1, false)), nil, 5)
	expectProduce(t, "old epoch", produceOne(t, c, "idem", producerBatchOf(pid, epoch, 5, 1, false)), kerr.InvalidProducerEpoch, 0)
	expectProduce(t, "old epoch, transactional", produceOne(t, c, "idem", producerBatchOf(pid, epoch, 5, 1, true)), kerr.ProducerFenced, 0)

	for _, how := range []string{"restart", "kill"} {
		if how == "kill" {
			p.Kill()
		}
		p.Restart()
		c = dialRaw(t, p.Addr())
		expectProduce(t, "retry after "+how, produceOne(t, c, "idem", producerBatchOf(pid, epoch+1, 0, 1, false)), nil, 5)
		expectProduce(t, "retry of an older batch after "+how, produceOne(t, c, "idem", producerBatchOf(pid, epoch, 3, 2, false)), kerr.InvalidProducerEpoch, 0)
	}
	expectProduce(t, "next after restarts", produceOne(t, c, "idem", producerBatchOf(pid, epoch+1, 1, 1, false)), nil, 6)
	got := readAll(t, p.Addr(), "idem", 1)
	if n := len(got[0]); n != 7 {
		t.Fatalf("partition holds %d records, want 7 (3+2+1+1, no duplicates)", n)
	}
}

// TestIdempotentClients round-trips records through idempotent producers of each client.
func TestIdempotentClients(t *testing.T) {
	p := brokertest.Start(t)
	admin := newClient(t, p.Addr())
	const n = 1000

	t.Run("client=sarama", func(t *testing.T) {
		topic := "idem-sarama"
		createTopic(t, admin, topic, roundTripPartitions, nil)
		cfg := saramaConfig(sarama.V4_0_0_0, sarama.CompressionNone)
		cfg.Producer.Idempotent = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Net.MaxOpenRequests = 1
		prod, err := sarama.NewSyncProducer([]string{p.Addr()}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		var acked []rec
		for i := 0; i < n; i += 50 {
			var msgs []*sarama.ProducerMessage
			for j := i; j < i+50; j++ {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(j % roundTripPartitions), Value: sarama.StringEncoder(value(topic, j, 100))})
			}
			if err := prod.SendMessages(msgs); err != nil {
				t.Fatalf("SendMessages: %v", err)
			}
			for _, m := range msgs {
				v, _ := m.Value.Encode()
				acked = append(acked, rec{m.Partition, m.Offset, string(v)})
			}
		}
		checkRoundTrip(t, acked, readAll(t, p.Addr(), topic, roundTripPartitions))
	})

	t.Run("client=franz-go", func(t *testing.T) {
		topic := "idem-franz"
		createTopic(t, admin, topic, roundTripPartitions, nil)
		cl := newClient(t, p.Addr(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(time.Millisecond))
		var mu sync.Mutex
		var acked []rec
		var firstErr error
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			cl.Produce(ctx(t, 30*time.Second), &kgo.Record{Partition: int32(i % roundTripPartitions), Value: []byte(value(topic, i, 100))},
				func(r *kgo.Record, err error) {
					defer wg.Done()
					mu.Lock()
					defer mu.Unlock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if err == nil {
						if r.ProducerID < 0 {
							firstErr = fmt.Errorf("record acknowledged without a producer id: idempotence is off")
						}
						acked = append(acked, rec{r.Partition, r.Offset, string(r.Value)})
					}
				})
		}
		wg.Wait()
		if firstErr != nil {
			t.Fatalf("produce: %v", firstErr)
		}
		checkRoundTrip(t, acked, readAll(t, p.Addr(), topic, roundTripPartitions))
	})

	t.Run("client=kcat", func(t *testing.T) {
		topic := "idem-kcat"
		createTopic(t, admin, topic, 1, nil)
		var in strings.Builder
		var acked []rec
		for i := 0; i < n; i++ {
			v := value(topic, i, 80)
			in.WriteString(v + "\n")
			acked = append(acked, rec{0, int64(i), v})
		}
		kcat(t, in.String(), "-P", "-b", p.Addr(), "-t", topic, "-p", "0", "-X", "enable.idempotence=true", "-X", "acks=all")
		checkRoundTrip(t, acked, readAll(t, p.Addr(), topic, 1))
		// librdkafka used a producer id: the batches on disk carry one.
		cl := newClient(t, p.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		fs := cl.PollFetches(ctx(t, 10*time.Second))
		var pid int64 = -1
		fs.EachRecord(func(r *kgo.Record) { pid = r.ProducerID })
		if pid < 0 {
			t.Fatalf("kcat's records carry producer id %s: idempotence was not used", strconv.FormatInt(pid, 10))
		}
	})
}

// TestBugSkipIdempotenceWindow: with the bug switch on, a retried idempotent batch is written
// a second time, which is what the checker's mutation run must catch.
func TestBugSkipIdempotenceWindow(t *testing.T) {
	p := brokertest.Start(t, brokertest.Set("kchaos.bug.skip-idempotence-window", "true"))
	createTopic(t, newClient(t, p.Addr()), "bug", 1, nil)
	c := dialRaw(t, p.Addr())
	pid, epoch := initProducerID(t, c)
	b := producerBatchOf(pid, epoch, 0, 2, false)
	expectProduce(t, "first", produceOne(t, c, "bug", b), nil, 0)
	expectProduce(t, "retry", produceOne(t, c, "bug", producerBatchOf(pid, epoch, 0, 2, false)), nil, 2)
	if n := len(readAll(t, p.Addr(), "bug", 1)[0]); n != 4 {
		t.Fatalf("partition holds %d records, want 4 (the retry duplicated)", n)
	}
}

// TestProducerIDExpiration: a producer idle longer than producer.id.expiration.ms is
// forgotten, so its next sequence (not 0) is UNKNOWN_PRODUCER_ID; a restart at sequence 0 is
// accepted.
func TestProducerIDExpiration(t *testing.T) {
	p := brokertest.Start(t, brokertest.Set("producer.id.expiration.ms", "1000"))
	createTopic(t, newClient(t, p.Addr()), "expire", 1, nil)
	c := dialRaw(t, p.Addr())
	pid, epoch := initProducerID(t, c)
	expectProduce(t, "first", produceOne(t, c, "expire", producerBatchOf(pid, epoch, 0, 1, false)), nil, 0)
	// Expiry runs with the log maintenance (log.retention.check.interval.ms, 1s): the producer
	// is gone within the 1s expiration plus a maintenance pass or two. Polling DescribeProducers
	// does not touch the producer's state.
	idle := testkit.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if ps := describeProducers(t, c, "expire"); len(ps) > 0 {
			return fmt.Errorf("producer %d still known", ps[0].ProducerID)
		}
		return nil
	})
	if sp := produceOne(t, c, "expire", producerBatchOf(pid, epoch, 1, 1, false)); sp.ErrorCode != kerr.UnknownProducerID.Code {
		t.Fatalf("next sequence after %s idle: %v, want UNKNOWN_PRODUCER_ID", idle, kerr.ErrorForCode(sp.ErrorCode))
	}
	sp := produceOne(t, c, "expire", producerBatchOf(pid, epoch, 0, 1, false))
	if sp.ErrorCode != 0 {
		t.Fatalf("restart at sequence 0 after expiry: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
}
