package broker_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/internal/testkit"
)

// The operators' APIs against one broker process, through franz-go's kadm, each result
// checked by reading the data back.

// produceValues writes values v<i> for i in [from, to) to partition 0 of topic, one batch
// each, and fails the test unless each lands at offset i.
func produceValues(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := from; i < to; i++ {
		r, err := cl.ProduceSync(ctx(t, 10*time.Second), &kgo.Record{Value: []byte("v" + strconv.Itoa(i))}).First()
		if err != nil {
			t.Fatalf("produce v%d: %v", i, err)
		}
		if r.Offset != int64(i) {
			t.Fatalf("v%d landed at offset %d", i, r.Offset)
		}
	}
}

// readFrom consumes partition 0 of topic from the earliest offset to offset end and returns
// offset → value.
func readFrom(t *testing.T, addr, topic string, end int64) map[int64]string {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	out := map[int64]string{}
	c := ctx(t, 20*time.Second)
	for int64(len(out)) == 0 || !slices.Contains(keys(out), end-1) {
		fs := cl.PollFetches(c)
		if err := c.Err(); err != nil {
			t.Fatalf("read %s to %d: got %d records: %v", topic, end, len(out), err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("read %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) { out[r.Offset] = string(r.Value) })
	}
	return out
}

func keys(m map[int64]string) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	return out
}

// segmentBases returns the base offsets of partition 0's segment files under dataDir.
func segmentBases(t *testing.T, dataDir, topic string) []int64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dataDir, topic+"-0", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, n := range names {
		base, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(n), ".log"), 10, 64)
		if err != nil {
			t.Fatalf("segment file %s: %v", n, err)
		}
		out = append(out, base)
	}
	slices.Sort(out)
	return out
}

func deleteRecords(t *testing.T, adm *kadm.Client, topic string, offset int64) kadm.DeleteRecordsResponse {
	t.Helper()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: offset})
	res, err := adm.DeleteRecords(ctx(t, 20*time.Second), os)
	if err != nil {
		t.Fatalf("DeleteRecords %s at %d: %v", topic, offset, err)
	}
	r, err := res.On(topic, 0, nil)
	if err != nil {
		t.Fatalf("DeleteRecords %s at %d: no answer for the partition: %v", topic, offset, err)
	}
	return r
}

// TestDeleteRecords: DeleteRecords moves the log start offset (never past the high
// watermark), deletes the segments wholly below it, and ListOffsets earliest, consumers and
// raw fetches see it, also after a restart.
func TestDeleteRecords(t *testing.T) {
	p := brokertest.Start(t)
	cl := newClient(t, p.Addr())
	adm := kadm.NewClient(cl)
	createTopic(t, cl, "dr", 1, map[string]string{"segment.bytes": "1024"})
	produceValues(t, p.Addr(), "dr", 0, 100)
	before := segmentBases(t, p.DataDir(), "dr")

	if r := deleteRecords(t, adm, "dr", 40); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("DeleteRecords at 40: %+v", r)
	}
	if off := listOffset(t, cl, "dr", 0, -2); off.ErrorCode != 0 || off.Offset != 40 {
		t.Fatalf("ListOffsets earliest after deleting below 40: %+v", off)
	}
	after := segmentBases(t, p.DataDir(), "dr")
	if len(after) >= len(before) || after[0] > 40 || (len(after) > 1 && after[1] <= 40) {
		t.Fatalf("segments %v before, %v after deleting below 40: want those wholly below 40 gone", before, after)
	}
	got := readFrom(t, p.Addr(), "dr", 100)
	for i := int64(0); i < 100; i++ {
		if v, ok := got[i]; (i < 40) == ok || (ok && v != "v"+strconv.FormatInt(i, 10)) {
			t.Fatalf("offset %d after deleting below 40: %q (present %v)", i, v, ok)
		}
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxBytes = -1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "dr", metadataTopic(t, cl, "dr").TopicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 10, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	if fr := request[*kmsg.FetchResponse](t, cl, fetch); fr.Topics[0].Partitions[0].ErrorCode != kerr.OffsetOutOfRange.Code || fr.Topics[0].Partitions[0].LogStartOffset != 40 {
		t.Fatalf("fetch at 10 below the log start offset 40: %+v", fr.Topics[0].Partitions[0])
	}

	// Past the high watermark is refused; below the log start offset changes nothing.
	if r := deleteRecords(t, adm, "dr", 101); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("DeleteRecords past the high watermark: %+v", r)
	}
	if r := deleteRecords(t, adm, "dr", 30); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("DeleteRecords below the log start offset: %+v", r)
	}

	p.Restart()
	cl = newClient(t, p.Addr())
	adm = kadm.NewClient(cl)
	if off := listOffset(t, cl, "dr", 0, -2); off.ErrorCode != 0 || off.Offset != 40 {
		t.Fatalf("ListOffsets earliest after a restart: %+v", off)
	}
	if r := deleteRecords(t, adm, "dr", -1); r.Err != nil || r.LowWatermark != 100 {
		t.Fatalf("DeleteRecords at the high watermark (-1): %+v", r)
	}
	produceValues(t, p.Addr(), "dr", 100, 101)
	if got := readFrom(t, p.Addr(), "dr", 101); len(got) != 1 || got[100] != "v100" {
		t.Fatalf("after deleting everything and producing v100, read %v", got)
	}

	// A compacted topic's records cannot be deleted; an unknown one does not exist.
	createTopic(t, cl, "compacted", 1, map[string]string{"cleanup.policy": "compact"})
	if r := deleteRecords(t, adm, "compacted", 0); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("DeleteRecords on a compacted topic: %+v", r)
	}
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 1000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "missing"
	rt.Partitions = append(rt.Partitions, kmsg.NewDeleteRecordsRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx(t, 10*time.Second), req)
	if err != nil || resp.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("DeleteRecords on a missing topic: %+v %v", resp, err)
	}
}

// TestDescribeLogDirs: the broker's data directory with every hosted partition's size (the
// bytes of its segment files) and offset lag; an offline directory is KAFKA_STORAGE_ERROR.
func TestDescribeLogDirs(t *testing.T) {
	p := brokertest.Start(t)
	cl := newClient(t, p.Addr())
	adm := kadm.NewClient(cl)
	createTopic(t, cl, "ld", 2, nil)
	produceValues(t, p.Addr(), "ld", 0, 20)

	all, err := adm.DescribeAllLogDirs(ctx(t, 10*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[1]
	abs, _ := filepath.Abs(p.DataDir())
	d, ok := dirs[abs]
	if len(dirs) != 1 || !ok || d.Err != nil {
		t.Fatalf("log dirs of broker 1: %+v; want only %s, healthy", dirs, abs)
	}
	for part := int32(0); part < 2; part++ {
		dp, ok := dirs.Lookup(abs, "ld", part)
		var size int64
		files, _ := filepath.Glob(filepath.Join(abs, "ld-"+strconv.Itoa(int(part)), "*.log"))
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			size += fi.Size()
		}
		if !ok || dp.Size != size || dp.OffsetLag != 0 || (part == 0) != (size > 0) {
			t.Fatalf("ld-%d: %+v (found %v); want size %d (the segment files), lag 0", part, dp, ok, size)
		}
	}
	some, err := adm.DescribeBrokerLogDirs(ctx(t, 10*time.Second), 1, kadm.TopicsSet{"ld": {1: {}}, "missing": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := some[abs].Topics; len(got) != 1 || len(got["ld"]) != 1 {
		t.Fatalf("log dirs of ld-1 and missing-0: %+v; want ld-1 only", got)
	}

	gone := p.DataDir() + ".gone"
	if err := os.Rename(p.DataDir(), gone); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Rename(gone, p.DataDir()) })
	dirs, err = adm.DescribeBrokerLogDirs(ctx(t, 10*time.Second), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := dirs[abs]; !errors.Is(d.Err, kerr.KafkaStorageError) || len(d.Topics) != 0 {
		t.Fatalf("log dir after it was moved away: %+v; want KAFKA_STORAGE_ERROR and no topics", d)
	}
}

// brokerConfig returns config name of resource ("" the cluster default, else a broker id) as
// kadm's DescribeBrokerConfigs reports it.
func brokerConfig(t *testing.T, adm *kadm.Client, resource, name string) (kadm.Config, bool) {
	t.Helper()
	var brokers []int32
	if resource != "" {
		id, _ := strconv.Atoi(resource)
		brokers = append(brokers, int32(id))
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx(t, 10*time.Second), brokers...)
	if err != nil {
		t.Fatal(err)
	}
	if len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("DescribeBrokerConfigs %q: %+v", resource, rcs)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == name {
			return c, true
		}
	}
	return kadm.Config{}, false
}

func alterBroker(t *testing.T, adm *kadm.Client, op kadm.IncrementalOp, name, value string, brokers ...int32) error {
	t.Helper()
	ac := kadm.AlterConfig{Op: op, Name: name}
	if op != kadm.DeleteConfig {
		ac.Value = kmsg.StringPtr(value)
	}
	res, err := adm.AlterBrokerConfigs(ctx(t, 10*time.Second), []kadm.AlterConfig{ac}, brokers...)
	if err != nil {
		t.Fatalf("AlterBrokerConfigs %s=%s: %v", name, value, err)
	}
	return res[0].Err
}

func sources(c kadm.Config) []kmsg.ConfigSource {
	var out []kmsg.ConfigSource
	for _, s := range c.Synonyms {
		out = append(out, s.Source)
	}
	return out
}

// TestDynamicBrokerConfigs: kadm's AlterBrokerConfigs sets dynamic broker configs for the
// cluster and for one broker; DescribeConfigs reports each with its source in Kafka's order
// of precedence; they change what the broker does (min.insync.replicas, message.max.bytes
// and retention for topics without their own setting), survive a restart, and keys Kafka
// does not let change dynamically are refused.
func TestDynamicBrokerConfigs(t *testing.T) {
	p := brokertest.Start(t, brokertest.Set("log.retention.ms", "86400000"))
	cl := newClient(t, p.Addr())
	adm := kadm.NewClient(cl)
	createTopic(t, cl, "dyn", 1, nil)
	prod := newClient(t, p.Addr(), kgo.DefaultProduceTopic("dyn"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce := func(size int) error {
		return prod.ProduceSync(ctx(t, 10*time.Second), &kgo.Record{Value: []byte(strings.Repeat("x", size))}).FirstErr()
	}

	// The static setting, then the cluster default, then the broker's own, by precedence.
	if c, _ := brokerConfig(t, adm, "1", "log.retention.ms"); c.Source != kmsg.ConfigSourceStaticBrokerConfig || *c.Value != "86400000" {
		t.Fatalf("log.retention.ms before any dynamic config: %+v", c)
	}
	if err := alterBroker(t, adm, kadm.SetConfig, "log.retention.ms", "3600000"); err != nil {
		t.Fatal(err)
	}
	if c, ok := brokerConfig(t, adm, "", "log.retention.ms"); !ok || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig || *c.Value != "3600000" {
		t.Fatalf("cluster default log.retention.ms: %+v", c)
	}
	if err := alterBroker(t, adm, kadm.SetConfig, "log.retention.ms", "7200000", 1); err != nil {
		t.Fatal(err)
	}
	c, _ := brokerConfig(t, adm, "1", "log.retention.ms")
	want := []kmsg.ConfigSource{kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig, kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigSourceDefaultConfig}
	if c.Source != kmsg.ConfigSourceDynamicBrokerConfig || *c.Value != "7200000" || !slices.Equal(sources(c), want) {
		t.Fatalf("broker 1's log.retention.ms: %+v (synonyms %v)", c, sources(c))
	}
	if tc := describeTopicConfigs(t, cl, "dyn")["retention.ms"]; deref(tc.Value) != "7200000" || tc.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("topic retention.ms follows the broker's dynamic config: %s from %v", deref(tc.Value), tc.Source)
	}

	// min.insync.replicas=2 on a broker of one: acks=all is refused until it is deleted again.
	if err := alterBroker(t, adm, kadm.SetConfig, "min.insync.replicas", "2"); err != nil {
		t.Fatal(err)
	}
	if err := produce(10); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with a dynamic min.insync.replicas=2 and one replica: %v", err)
	}
	if err := alterBroker(t, adm, kadm.DeleteConfig, "min.insync.replicas", ""); err != nil {
		t.Fatal(err)
	}
	if err := produce(10); err != nil {
		t.Fatalf("acks=all once min.insync.replicas is deleted: %v", err)
	}
	// message.max.bytes for this broker only.
	if err := alterBroker(t, adm, kadm.SetConfig, "message.max.bytes", "2000", 1); err != nil {
		t.Fatal(err)
	}
	if err := produce(4000); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a 4000-byte record with message.max.bytes=2000: %v", err)
	}

	// What Kafka does not let change, or does not know, is refused; so is another broker's
	// resource (it must be altered through that broker) and a bad value.
	for _, tc := range []struct {
		name, value string
		brokers     []int32
	}{
		{"replica.lag.time.max.ms", "1000", nil},
		{"num.partitions", "3", []int32{1}},
		{"no.such.config", "1", nil},
		{"log.retention.ms", "soon", nil},
	} {
		if err := alterBroker(t, adm, kadm.SetConfig, tc.name, tc.value, tc.brokers...); !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("setting %s=%s on %v: %v, want INVALID_REQUEST", tc.name, tc.value, tc.brokers, err)
		}
	}
	other := kmsg.NewPtrIncrementalAlterConfigsRequest()
	or := kmsg.NewIncrementalAlterConfigsRequestResource()
	or.ResourceType, or.ResourceName = kmsg.ConfigResourceTypeBroker, "2"
	or.Configs = append(or.Configs, alterOp(kmsg.IncrementalAlterConfigOpSet, "log.retention.ms", "1000"))
	other.Resources = append(other.Resources, or)
	if resp, err := cl.SeedBrokers()[0].Request(ctx(t, 10*time.Second), other); err != nil || resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("broker 1 altering broker 2's configs: %+v %v, want INVALID_REQUEST", resp, err)
	}
	// Kafka's preprocessing: a resource named twice (both refused), a null value to SET; the
	// valid resource between them is applied.
	bad := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, rc := range []struct {
		typ   kmsg.ConfigResourceType
		name  string
		value *string
	}{
		{kmsg.ConfigResourceTypeBroker, "", kmsg.StringPtr("1")},
		{kmsg.ConfigResourceTypeTopic, "dyn", kmsg.StringPtr("1000")},
		{kmsg.ConfigResourceTypeBroker, "", kmsg.StringPtr("2")},
		{kmsg.ConfigResourceTypeBroker, "1", nil},
	} {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = rc.typ, rc.name
		op := alterOp(kmsg.IncrementalAlterConfigOpSet, "min.insync.replicas", "")
		if rc.typ == kmsg.ConfigResourceTypeTopic {
			op.Name = "segment.ms"
		}
		op.Value = rc.value
		rr.Configs = append(rr.Configs, op)
		bad.Resources = append(bad.Resources, rr)
	}
	resp, err := cl.SeedBrokers()[0].Request(ctx(t, 10*time.Second), bad)
	if err != nil {
		t.Fatal(err)
	}
	var codes []int16
	for _, r := range resp.(*kmsg.IncrementalAlterConfigsResponse).Resources {
		codes = append(codes, r.ErrorCode)
	}
	inv := kerr.InvalidRequest.Code
	if !slices.Equal(codes, []int16{inv, 0, inv, inv}) {
		t.Errorf("preprocessing: error codes %v, want [%d 0 %d %d]", codes, inv, inv, inv)
	}
	if tc := describeTopicConfigs(t, cl, "dyn")["segment.ms"]; deref(tc.Value) != "1000" {
		t.Errorf("segment.ms of dyn after the mixed request: %s, want 1000", deref(tc.Value))
	}
	dc := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeBroker, "1", []string{"replica.lag.time.max.ms", "log.retention.ms"}
	dc.Resources = append(dc.Resources, rr)
	for _, e := range request[*kmsg.DescribeConfigsResponse](t, cl, dc).Resources[0].Configs {
		if e.ReadOnly != (e.Name == "replica.lag.time.max.ms") {
			t.Errorf("%s read-only %v", e.Name, e.ReadOnly)
		}
	}

	// Dynamic configs live in the controller's log: a restart keeps them.
	p.Restart()
	adm = kadm.NewClient(newClient(t, p.Addr()))
	if c, _ := brokerConfig(t, adm, "1", "message.max.bytes"); c.Source != kmsg.ConfigSourceDynamicBrokerConfig || *c.Value != "2000" {
		t.Fatalf("message.max.bytes after a restart: %+v", c)
	}
	if c, ok := brokerConfig(t, adm, "", "log.retention.ms"); !ok || *c.Value != "3600000" {
		t.Fatalf("cluster default log.retention.ms after a restart: %+v", c)
	}
}

// TestDynamicRetention: a cluster-wide log.retention.ms and log.segment.bytes set at run
// time make the broker delete old segments of a topic without its own settings.
func TestDynamicRetention(t *testing.T) {
	p := brokertest.Start(t, brokertest.Set("log.retention.check.interval.ms", "100"))
	cl := newClient(t, p.Addr())
	adm := kadm.NewClient(cl)
	createTopic(t, cl, "aging", 1, nil)
	if err := alterBroker(t, adm, kadm.SetConfig, "log.segment.bytes", "1024"); err != nil {
		t.Fatal(err)
	}
	produceValues(t, p.Addr(), "aging", 0, 60)
	if n := len(segmentBases(t, p.DataDir(), "aging")); n < 3 {
		t.Fatalf("%d segments after a dynamic log.segment.bytes=1024; want several", n)
	}
	if err := alterBroker(t, adm, kadm.SetConfig, "log.retention.ms", "1"); err != nil {
		t.Fatal(err)
	}
	// Every record is older than 1ms and below the high watermark, so every segment goes, the
	// active one too (rolled first), as Kafka does: the log starts at its end.
	testkit.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if off := listOffset(t, cl, "aging", 0, -2); off.ErrorCode != 0 || off.Offset != 60 {
			return fmt.Errorf("retention after log.retention.ms=1: earliest %+v, want 60", off)
		}
		return nil
	})
}
