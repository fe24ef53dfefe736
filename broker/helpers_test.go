package broker_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
)

func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }

// rec is one record as a producer saw it acknowledged or a consumer read it.
type rec struct {
	Partition int32
	Offset    int64
	Value     string
}

// ctx returns a context bounded by d that ends with the test.
func ctx(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// newClient returns a franz-go client of the broker, closed when the test ends.
func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// request sends one kmsg request and fails the test on a transport error.
func request[R kmsg.Response](t testing.TB, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.Request(ctx(t, 10*time.Second), req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

// createTopic creates a topic with n partitions and the given configs, failing the test on any
// error.
func createTopic(t testing.TB, cl *kgo.Client, name string, n int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, n, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp := request[*kmsg.CreateTopicsResponse](t, cl, req)
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v (%s)", name, err, deref(resp.Topics[0].ErrorMessage))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// listOffset answers ListOffsets for one partition at ts (-1 latest, -2 earliest).
func listOffset(t testing.TB, cl *kgo.Client, topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = partition, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := request[*kmsg.ListOffsetsResponse](t, cl, req)
	return resp.Topics[0].Partitions[0]
}

// readAll consumes partitions 0..n-1 of topic from the start up to their high watermarks
// with franz-go and returns the records by partition, failing on any fetch error.
func readAll(t testing.TB, addr, topic string, n int32) map[int32][]rec {
	t.Helper()
	admin := newClient(t, addr)
	ends := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < n; p++ {
		lo := listOffset(t, admin, topic, p, -1)
		if err := kerr.ErrorForCode(lo.ErrorCode); err != nil {
			t.Fatalf("ListOffsets %s-%d: %v", topic, p, err)
		}
		if lo.Offset > 0 {
			ends[p] = lo.Offset
			offsets[p] = kgo.NewOffset().AtStart()
		}
	}
	out := map[int32][]rec{}
	if len(ends) == 0 {
		return out
	}
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxWait(200*time.Millisecond))
	c := ctx(t, 30*time.Second)
	done := func() bool {
		for p, end := range ends {
			r := out[p]
			if len(r) == 0 || r[len(r)-1].Offset < end-1 {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("consume %s: timed out; ends %v, read %v", topic, ends, counts(out))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], rec{r.Partition, r.Offset, string(r.Value)})
		})
	}
	return out
}

func counts(m map[int32][]rec) map[int32]int {
	c := map[int32]int{}
	for p, rs := range m {
		c[p] = len(rs)
	}
	return c
}

// checkRoundTrip asserts that read holds exactly the acknowledged records: each partition's
// records in offset order, every acknowledged (partition, offset, value) present, nothing
// else.
func checkRoundTrip(t testing.TB, acked []rec, read map[int32][]rec) {
	t.Helper()
	want := map[int32]map[int64]string{}
	for _, r := range acked {
		if want[r.Partition] == nil {
			want[r.Partition] = map[int64]string{}
		}
		if v, dup := want[r.Partition][r.Offset]; dup {
			t.Fatalf("offset %d of partition %d acknowledged twice (%q and %q)", r.Offset, r.Partition, v, r.Value)
		}
		want[r.Partition][r.Offset] = r.Value
	}
	total := 0
	for p, rs := range read {
		for i, r := range rs {
			if i > 0 && r.Offset <= rs[i-1].Offset {
				t.Fatalf("partition %d: offset %d read after %d", p, r.Offset, rs[i-1].Offset)
			}
			v, ok := want[p][r.Offset]
			if !ok {
				t.Fatalf("partition %d: read offset %d (%q) that was never acknowledged", p, r.Offset, r.Value)
			}
			if v != r.Value {
				t.Fatalf("partition %d offset %d: read %q, acknowledged %q", p, r.Offset, r.Value, v)
			}
			total++
		}
	}
	if total != len(acked) {
		t.Fatalf("read %d records, %d acknowledged (read per partition: %v)", total, len(acked), counts(read))
	}
}

// value is the deterministic payload of record i of a test, padded to size bytes.
func value(tag string, i, size int) string {
	s := fmt.Sprintf("%s-%06d-", tag, i)
	for len(s) < size {
		s += string(rune('a' + len(s)%26))
	}
	return s
}
