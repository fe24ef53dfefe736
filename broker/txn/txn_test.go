package txn

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

var t0 = time.Unix(1_700_000_000, 0)

var cfg = Config{MaxTimeout: 15 * time.Minute}

// ids hands out producer ids 1000, 1001, ... and counts the calls.
type ids struct{ next, calls int64 }

func (g *ids) newID() (int64, error) {
	g.calls++
	g.next++
	return 999 + g.next, nil
}

func tp(topic string, p int32) TopicPartition { return TopicPartition{Topic: topic, Partition: p} }

// initNew makes a fresh transactional id "t" at producer id 1000, epoch 0.
func initNew(t *testing.T, g *ids) *Txn {
	t.Helper()
	res, err := Init(cfg, "t", nil, InitRequest{Timeout: time.Minute, ProducerID: -1, Epoch: -1}, t0, g.newID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Next == nil || res.Abort || res.Next.ProducerID != 1000 || res.Next.Epoch != 0 || res.Next.State != Empty {
		t.Fatalf("init = %+v", res)
	}
	return res.Next
}

// ongoing adds partitions a-0 and b-1 to a fresh id.
func ongoing(t *testing.T, g *ids) *Txn {
	t.Helper()
	cur := initNew(t, g)
	next, err := AddPartitions(cur, 1000, 0, []TopicPartition{tp("a", 0), tp("b", 1)}, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func wantErr(t *testing.T, got, want *kerr.Error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("error = %v, want %v", got, want)
	}
}

func TestInitTimeoutBounds(t *testing.T) {
	g := &ids{}
	for _, d := range []time.Duration{0, -time.Second, 15*time.Minute + time.Millisecond} {
		_, err := Init(cfg, "t", nil, InitRequest{Timeout: d, ProducerID: -1, Epoch: -1}, t0, g.newID)
		wantErr(t, err, kerr.InvalidTransactionTimeout)
	}
	if g.calls != 0 {
		t.Fatalf("a refused init used %d producer ids", g.calls)
	}
	if _, err := Init(cfg, "t", nil, InitRequest{Timeout: 15 * time.Minute, ProducerID: -1, Epoch: -1}, t0, g.newID); err != nil {
		t.Fatalf("the maximum timeout itself: %v", err)
	}
}

func TestInitBumpsEpochAndFencesOldProducer(t *testing.T) {
	g := &ids{}
	cur := initNew(t, g)
	res, err := Init(cfg, "t", cur, InitRequest{Timeout: 2 * time.Minute, ProducerID: -1, Epoch: -1}, t0, g.newID)
	if err != nil {
		t.Fatal(err)
	}
	next := res.Next
	if next.ProducerID != 1000 || next.Epoch != 1 || next.Timeout != 2*time.Minute || next.LastEpoch != 0 {
		t.Fatalf("second init = %+v", next)
	}
	if cur.Epoch != 0 {
		t.Fatal("Init modified the current state")
	}
	_, err = AddPartitions(next, 1000, 0, []TopicPartition{tp("a", 0)}, t0)
	wantErr(t, err, kerr.ProducerFenced)
	_, err = End(next, 1000, 0, true, t0)
	wantErr(t, err, kerr.ProducerFenced)
	_, err = AddPartitions(next, 7, 1, []TopicPartition{tp("a", 0)}, t0)
	wantErr(t, err, kerr.InvalidProducerIDMapping)
}

func TestInitKIP360(t *testing.T) {
	g := &ids{}
	cur := initNew(t, g)
	// The client's current id and epoch: bumped.
	res, err := Init(cfg, "t", cur, InitRequest{Timeout: time.Minute, ProducerID: 1000, Epoch: 0}, t0, g.newID)
	if err != nil || res.Next.Epoch != 1 {
		t.Fatalf("recovery init = %+v, %v", res, err)
	}
	cur = res.Next
	// A retry of that init (the client never saw the answer): no new bump.
	res, err = Init(cfg, "t", cur, InitRequest{Timeout: time.Minute, ProducerID: 1000, Epoch: 0}, t0, g.newID)
	if err != nil || res.Next != nil {
		t.Fatalf("retried init = %+v, %v", res, err)
	}
	// An older epoch or a foreign id: fenced.
	_, err = Init(cfg, "t", cur, InitRequest{Timeout: time.Minute, ProducerID: 1000, Epoch: 5}, t0, g.newID)
	wantErr(t, err, kerr.ProducerFenced)
	_, err = Init(cfg, "t", cur, InitRequest{Timeout: time.Minute, ProducerID: 42, Epoch: 1}, t0, g.newID)
	wantErr(t, err, kerr.ProducerFenced)
	// Recovery for an id whose state is gone.
	_, err = Init(cfg, "u", nil, InitRequest{Timeout: time.Minute, ProducerID: 1000, Epoch: 1}, t0, g.newID)
	wantErr(t, err, kerr.InvalidProducerIDMapping)
}

func TestInitExhaustedEpochTakesNewProducerID(t *testing.T) {
	g := &ids{}
	cur := initNew(t, g)
	cur.Epoch = maxEpoch
	res, err := Init(cfg, "t", cur, InitRequest{Timeout: time.Minute, ProducerID: -1, Epoch: -1}, t0, g.newID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Next.ProducerID != 1001 || res.Next.Epoch != 0 || res.Next.LastProducerID != 1000 {
		t.Fatalf("init at epoch %d = %+v", maxEpoch, res.Next)
	}
}

func TestInitAbortsOngoingTransaction(t *testing.T) {
	g := &ids{}
	cur := ongoing(t, g)
	res, err := Init(cfg, "t", cur, InitRequest{Timeout: time.Minute, ProducerID: -1, Epoch: -1}, t0, g.newID)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Abort || res.Next.State != PrepareAbort || res.Next.Epoch != 1 || len(res.Next.Partitions) != 2 {
		t.Fatalf("init during a transaction = %+v", res)
	}
	// While the abort's markers are written, the new producer waits.
	_, err = Init(cfg, "t", res.Next, InitRequest{Timeout: time.Minute, ProducerID: -1, Epoch: -1}, t0, g.newID)
	wantErr(t, err, kerr.ConcurrentTransactions)
	done := res.Next.Completed(t0)
	if done.State != CompleteAbort || len(done.Partitions) != 0 {
		t.Fatalf("completed = %+v", done)
	}
	res, err = Init(cfg, "t", done, InitRequest{Timeout: time.Minute, ProducerID: -1, Epoch: -1}, t0, g.newID)
	if err != nil || res.Next.Epoch != 2 || res.Next.State != Empty {
		t.Fatalf("init after the abort = %+v, %v", res, err)
	}
}

func TestAddPartitions(t *testing.T) {
	g := &ids{}
	cur := ongoing(t, g)
	if cur.State != Ongoing || len(cur.Partitions) != 2 || !cur.Start.Equal(t0.Add(time.Second)) {
		t.Fatalf("after add = %+v", cur)
	}
	next, err := AddPartitions(cur, 1000, 0, []TopicPartition{tp("a", 0)}, t0.Add(2*time.Second))
	if err != nil || next != nil {
		t.Fatalf("re-adding a partition = %+v, %v; want no change", next, err)
	}
	next, err = AddPartitions(cur, 1000, 0, []TopicPartition{tp("a", 0), tp("c", 2)}, t0.Add(2*time.Second))
	if err != nil || len(next.Partitions) != 3 || !next.Start.Equal(cur.Start) {
		t.Fatalf("adding one more = %+v, %v", next, err)
	}
	if got := next.SortedPartitions(); got[0] != tp("a", 0) || got[2] != tp("c", 2) {
		t.Fatalf("sorted = %v", got)
	}
	_, err = AddPartitions(nil, 1000, 0, []TopicPartition{tp("a", 0)}, t0)
	wantErr(t, err, kerr.InvalidProducerIDMapping)
}

func TestEndCommitAndRetries(t *testing.T) {
	g := &ids{}
	cur := ongoing(t, g)
	prep, err := End(cur, 1000, 0, true, t0)
	if err != nil || prep.State != PrepareCommit || len(prep.Partitions) != 2 {
		t.Fatalf("end = %+v, %v", prep, err)
	}
	// While markers are written: the same EndTxn and any AddPartitions wait; the opposite
	// outcome is refused.
	_, err = End(prep, 1000, 0, true, t0)
	wantErr(t, err, kerr.ConcurrentTransactions)
	_, err = End(prep, 1000, 0, false, t0)
	wantErr(t, err, kerr.InvalidTxnState)
	_, err = AddPartitions(prep, 1000, 0, []TopicPartition{tp("a", 0)}, t0)
	wantErr(t, err, kerr.ConcurrentTransactions)
	done := prep.Completed(t0)
	if done.State != CompleteCommit || len(done.Partitions) != 0 {
		t.Fatalf("completed = %+v", done)
	}
	// A retried EndTxn after completion succeeds without change; the opposite is refused.
	if next, err := End(done, 1000, 0, true, t0); err != nil || next != nil {
		t.Fatalf("retried commit = %+v, %v", next, err)
	}
	_, err = End(done, 1000, 0, false, t0)
	wantErr(t, err, kerr.InvalidTxnState)
	// The next transaction starts afresh.
	next, err := AddPartitions(done, 1000, 0, []TopicPartition{tp("z", 9)}, t0.Add(time.Hour))
	if err != nil || next.State != Ongoing || len(next.Partitions) != 1 || !next.Start.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next transaction = %+v, %v", next, err)
	}
}

func TestEndAbortAndInvalidState(t *testing.T) {
	g := &ids{}
	cur := initNew(t, g)
	_, err := End(cur, 1000, 0, true, t0)
	wantErr(t, err, kerr.InvalidTxnState)
	cur = ongoing(t, &ids{})
	prep, err := End(cur, cur.ProducerID, 0, false, t0)
	if err != nil || prep.State != PrepareAbort {
		t.Fatalf("abort = %+v, %v", prep, err)
	}
	if prep.Completed(t0).State != CompleteAbort {
		t.Fatal("an aborted transaction did not complete as CompleteAbort")
	}
	if cur.Completed(t0) != cur {
		t.Fatal("Completed changed an Ongoing transaction")
	}
}

func TestEndWithoutPartitionsCompletesAtOnce(t *testing.T) {
	g := &ids{}
	cur := initNew(t, g)
	cur.State = Ongoing
	next, err := End(cur, 1000, 0, true, t0)
	if err != nil || next.State != CompleteCommit {
		t.Fatalf("end of an empty transaction = %+v, %v", next, err)
	}
}

func TestExpire(t *testing.T) {
	g := &ids{}
	cur := ongoing(t, g) // started at t0+1s with a one-minute timeout
	if cur.Expired(t0.Add(time.Minute)) {
		t.Fatal("expired before its timeout")
	}
	if !cur.Expired(t0.Add(time.Minute + 2*time.Second)) {
		t.Fatal("not expired after its timeout")
	}
	next, err := Expire(cur, t0.Add(2*time.Minute), g.newID)
	if err != nil || next.State != PrepareAbort || next.Epoch != 1 || len(next.Partitions) != 2 {
		t.Fatalf("expire = %+v, %v", next, err)
	}
	// The producer that let it time out is fenced.
	_, err = End(next.Completed(t0), 1000, 0, true, t0)
	wantErr(t, err, kerr.ProducerFenced)
	_, err = Expire(next, t0.Add(3*time.Minute), g.newID)
	wantErr(t, err, kerr.InvalidTxnState)
}

func TestStateNames(t *testing.T) {
	for s := Empty; s <= PrepareEpochFence; s++ {
		got, ok := ParseState(s.String())
		if !ok || got != s {
			t.Fatalf("ParseState(%q) = %v, %v", s.String(), got, ok)
		}
	}
	if _, ok := ParseState("Bogus"); ok {
		t.Fatal("ParseState accepted an unknown name")
	}
	if PrepareCommit.String() != "PrepareCommit" || State(42).String() != "Unknown" {
		t.Fatal("state names differ from Kafka's")
	}
}
