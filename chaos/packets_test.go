package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/internal/e2e"
)

// packetStats sums the link proxies' Kafka-level counters.
func packetStats(c *e2e.Cluster) (corrupted, duplicated, reordered int64) {
	for _, st := range c.Net().Stats() {
		corrupted += st.Corrupted()
		duplicated += st.Duplicated()
		reordered += st.Reordered()
	}
	return
}

// producer returns a franz-go client for topic on c with opts added.
func producer(t *testing.T, c *e2e.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Bootstrap()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceAll sends values to topic-0 one at a time and fails on any send that is not
// acknowledged, except that a send refused with CORRUPT_MESSAGE (franz-go does not retry it;
// the Java producer does) is sent again. It returns how many sends were refused so.
func produceAll(t *testing.T, cl *kgo.Client, topic string, values []string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	refused := 0
	for _, v := range values {
		for {
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr()
			if errors.Is(err, kerr.CorruptMessage) {
				refused++
				continue
			}
			if err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			break
		}
	}
	return refused
}

// readAll reads topic-0 from the start until it has n records or 20s pass, through c's client
// links, and returns the values and the fetch errors the consumer saw.
func readAll(t *testing.T, c *e2e.Cluster, topic string, n int) ([]string, []error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []string
	var errs []error
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, err)
			}
		})
		if len(errs) > 1000 {
			break // a consumer stuck on a batch it refuses
		}
		for _, r := range fs.Records() {
			out = append(out, string(r.Value))
		}
	}
	return out, errs
}

func seqValues(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// TestCorruptBatchesAreNeverAccepted flips bits in produce requests and fetch responses on
// every client and replication link of a real cluster: brokers refuse the damaged produce
// requests (CORRUPT_MESSAGE, which the idempotent producer retries), followers refetch damaged
// batches, consumers see CRC errors and refetch, and every value is read exactly once, none
// damaged.
func TestCorruptBatchesAreNeverAccepted(t *testing.T) {
	c := e2e.StartCluster(t, 3)
	c.CreateTopic("cor", 1, 3)
	cl := producer(t, c, kgo.RequiredAcks(kgo.AllISRAcks()))
	produceAll(t, cl, "cor", seqValues("before-", 20))
	start := time.Now()
	r := c.Fault(chaos.Fault{Kind: chaos.Corrupt, Target: chaos.Target{Sel: chaos.SelAll}, Params: map[string]string{"rate": "0.3"}})
	applied := time.Since(start)
	probes := 0
	effect := e2e.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "cor", Value: []byte("probe")}).FirstErr()
		if err == nil {
			probes++
			return errors.New("produce acknowledged")
		}
		if !errors.Is(err, kerr.CorruptMessage) {
			t.Fatal(err)
		}
		return nil
	})
	during := seqValues("during-", 100)
	refused := produceAll(t, cl, "cor", during)
	want := 20 + 100 + probes
	got, fetchErrs := readAll(t, c, "cor", want)
	corrupted, _, _ := packetStats(c)
	healStart := time.Now()
	healTook := c.Heal(r)
	after := seqValues("after-", 20)
	produceAll(t, cl, "cor", after)
	heal := time.Since(healStart)
	n0, _, _ := packetStats(c)
	got2, errs2 := readAll(t, c, "cor", want+20)
	n1, _, _ := packetStats(c)
	t.Logf("corrupt rate 0.3: takes effect (first CORRUPT_MESSAGE) %v after Apply began (Apply %v); %d batches corrupted; %d of 100 sends refused with CORRUPT_MESSAGE; consumer saw %d fetch errors (first: %v); heals in %v (Heal %v); after heal %d more corrupted, %d fetch errors",
		applied+effect, applied, corrupted, refused, len(fetchErrs), first(fetchErrs), heal, healTook, n1-n0, len(errs2))
	if corrupted < 10 || len(fetchErrs) == 0 {
		t.Errorf("%d batches corrupted and %d fetch errors: the fault did not act on both directions", corrupted, len(fetchErrs))
	}
	wantVals := append(seqValues("before-", 20), during...)
	if probes > 0 {
		wantVals = append(append(seqValues("before-", 20), "probe"), during...)
	}
	wantVals = append(wantVals, after...)
	checkExactlyOnce(t, got2, wantVals, "probe")
	if len(got) < want {
		t.Errorf("during the fault the consumer read %d of %d records", len(got), want)
	}
	if n1 != n0 || len(errs2) != 0 {
		t.Errorf("after heal: %d batches corrupted, fetch errors %v", n1-n0, errs2)
	}
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// checkExactlyOnce fails unless got holds each of want once (values named repeatable may
// appear more than once: probes sent until the fault showed), in order, and nothing else.
func checkExactlyOnce(t *testing.T, got, want []string, repeatable string) {
	t.Helper()
	var clean []string
	seen := map[string]bool{}
	for _, v := range got {
		if v == repeatable && seen[v] {
			continue
		}
		if seen[v] {
			t.Errorf("value %q read twice", v)
		}
		seen[v] = true
		clean = append(clean, v)
	}
	if !slices.Equal(clean, want) {
		t.Errorf("read %d values, want %d in order; first difference at %s", len(clean), len(want), firstDiff(clean, want))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%d: %q vs %q", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("%d (lengths %d, %d)", min(len(a), len(b)), len(a), len(b))
}

// TestDuplicateProduceRequests sends every produce request twice on the client links: without
// idempotence each record is written twice, with it once.
func TestDuplicateProduceRequests(t *testing.T) {
	c := e2e.StartCluster(t, 3)
	c.CreateTopic("dup", 1, 3)
	c.CreateTopic("idem", 1, 3)
	start := time.Now()
	r := c.Fault(chaos.Fault{Kind: chaos.Duplicate, Target: chaos.Target{Sel: chaos.SelClients}, Params: map[string]string{"rate": "1"}})
	applied := time.Since(start)
	plain := producer(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	idem := producer(t, c, kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 30
	produceAll(t, plain, "dup", seqValues("p", n))
	produceAll(t, idem, "idem", seqValues("i", n))
	effect := time.Since(start) - applied
	_, dups, _ := packetStats(c)
	gotPlain, _ := readAll(t, c, "dup", 2*n)
	gotIdem, _ := readAll(t, c, "idem", n)
	healTook := c.Heal(r)
	produceAll(t, plain, "dup", []string{"after"})
	gotAfter, _ := readAll(t, c, "dup", 2*n+1)
	t.Logf("duplicate rate 1: Apply %v; %d produce requests sent twice in %v; without idempotence %d records for %d sends, with it %d; Heal %v",
		applied, dups, effect, len(gotPlain), n, len(gotIdem), healTook)
	if len(gotPlain) != 2*n {
		t.Errorf("without idempotence %d records read for %d sends, want each twice", len(gotPlain), n)
	}
	checkExactlyOnce(t, gotIdem, seqValues("i", n), "")
	if len(gotAfter) != 2*n+1 || gotAfter[len(gotAfter)-1] != "after" {
		t.Errorf("after heal the record was written %d times", len(gotAfter)-2*n)
	}
}

// TestReorderProduceRequests swaps pipelined produce requests: raw acks=1 requests without a
// producer id, pipelined on one connection, are written out of order; an idempotent producer
// keeps its order (the broker answers OUT_OF_ORDER_SEQUENCE_NUMBER and the producer resends).
func TestReorderProduceRequests(t *testing.T) {
	c := e2e.StartCluster(t, 3)
	rc := &replCluster{Cluster: c, t: t}
	c.CreateTopic("ro", 1, 3)
	c.CreateTopic("ri", 1, 3)
	leader := c.WaitOnLeader("ro", 0)
	start := time.Now()
	r := c.Fault(chaos.Fault{Kind: chaos.Reorder, Target: chaos.Target{Sel: chaos.SelClients}, Params: map[string]string{"rate": "0.5", "window": "50ms"}})
	applied := time.Since(start)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- rc.produceRaw(leader, "ro", 0, 1, []string{strconv.Itoa(i)})
		}()
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A request that overtakes an earlier one of the same idempotent producer is answered
	// OUT_OF_ORDER_SEQUENCE_NUMBER, as by Kafka; franz-go then bumps its epoch and resends
	// after a metadata refresh, which by default waits out MetadataMinAge (5s): 8 to 12 such
	// rounds took 40 to 66s. A short minimum age keeps each round to milliseconds.
	idem := producer(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(10),
		kgo.MetadataMinAge(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, n)
	for _, v := range seqValues("", n) {
		idem.Produce(ctx, &kgo.Record{Topic: "ri", Value: []byte(v)}, func(_ *kgo.Record, err error) { done <- err })
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatalf("idempotent produce: %v", err)
		}
	}
	_, _, swapped := packetStats(c)
	plain, _ := readAll(t, c, "ro", n)
	ordered, _ := readAll(t, c, "ri", n)
	healTook := c.Heal(r)
	inv := func(vals []string) int {
		k := 0
		for i := 1; i < len(vals); i++ {
			a, _ := strconv.Atoi(vals[i-1])
			b, _ := strconv.Atoi(vals[i])
			if b < a {
				k++
			}
		}
		return k
	}
	t.Logf("reorder rate 0.5: Apply %v; %d requests swapped; %d order inversions in %d raw pipelined requests, %d in %d records of an idempotent producer; Heal %v",
		applied, swapped, inv(plain), len(plain), inv(ordered), len(ordered), healTook)
	if swapped == 0 || inv(plain) == 0 {
		t.Errorf("no reordering seen: %d swapped, %d inversions", swapped, inv(plain))
	}
	checkExactlyOnce(t, ordered, seqValues("", n), "")
}

// TestClientClockSkew skews the clients' clocks: records keep the CreateTime the clients'
// links give them, an hour behind, and the true time after the fault.
func TestClientClockSkew(t *testing.T) {
	c := e2e.StartCluster(t, 3)
	c.CreateTopic("cs", 1, 3)
	cl := producer(t, c)
	ts := func(v string) time.Duration {
		r := &kgo.Record{Topic: "cs", Value: []byte(v)}
		before := time.Now()
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return fetchTimestamp(t, c, "cs", r.Offset).Sub(before)
	}
	start := time.Now()
	r := c.Fault(chaos.Fault{Kind: chaos.ClockSkew, Target: chaos.Target{Sel: chaos.SelClients}, Params: map[string]string{"offset": "-1h"}})
	applied := time.Since(start)
	if d := ts("skewed"); d > -59*time.Minute || d < -61*time.Minute {
		t.Fatalf("record stamped %v from the true time under a -1h client skew", d)
	}
	effect := time.Since(start)
	healTook := c.Heal(r)
	if d := ts("true"); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("record stamped %v from the true time after heal", d)
	}
	t.Logf("clock-skew clients -1h: Apply %v, first skewed record within %v; Heal %v", applied, effect, healTook)
}

// fetchTimestamp reads the record at offset of topic-0 and returns its timestamp.
func fetchTimestamp(t *testing.T, c *e2e.Cluster, topic string, offset int64) time.Time {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(offset)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			return r.Timestamp
		}
	}
	t.Fatalf("record %d of %s not read", offset, topic)
	return time.Time{}
}
