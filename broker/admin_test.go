package broker_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
)

// Admin APIs against a real broker process, through franz-go's kmsg requests.

func createTopicsReq(validateOnly bool, name string, n int32, configs map[string]string) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = validateOnly
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, n, -1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func metadataTopic(t *testing.T, cl *kgo.Client, name string) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, mt)
	req.AllowAutoTopicCreation = false
	return request[*kmsg.MetadataResponse](t, cl, req).Topics[0]
}

func TestCreateDeleteTopicsAndPartitions(t *testing.T) {
	p := brokertest.Start(t)
	cl := newClient(t, p.Addr())

	// validate-only creates nothing.
	resp := request[*kmsg.CreateTopicsResponse](t, cl, createTopicsReq(true, "vo", 3, map[string]string{"retention.ms": "1000"}))
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.NumPartitions != 3 {
		t.Fatalf("validate-only create: %+v", st)
	}
	if mt := metadataTopic(t, cl, "vo"); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("validate-only create made the topic: error %v", kerr.ErrorForCode(mt.ErrorCode))
	}

	// A bad config value and an unknown config are INVALID_CONFIG.
	for _, cfg := range []map[string]string{{"retention.ms": "soon"}, {"no.such.config": "1"}} {
		resp = request[*kmsg.CreateTopicsResponse](t, cl, createTopicsReq(false, "bad", 1, cfg))
		if resp.Topics[0].ErrorCode != kerr.InvalidConfig.Code {
			t.Fatalf("create with %v: error %v, want INVALID_CONFIG", cfg, kerr.ErrorForCode(resp.Topics[0].ErrorCode))
		}
	}

	// A real create answers its configs; a second is TOPIC_ALREADY_EXISTS.
	resp = request[*kmsg.CreateTopicsResponse](t, cl, createTopicsReq(false, "t1", 2, map[string]string{"cleanup.policy": "compact"}))
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.NumPartitions != 2 || st.ReplicationFactor != 1 {
		t.Fatalf("create: %+v", st)
	}
	found := false
	for _, c := range resp.Topics[0].Configs {
		if c.Name == "cleanup.policy" {
			found = deref(c.Value) == "compact"
		}
	}
	if !found {
		t.Fatalf("create response configs lack cleanup.policy=compact: %+v", resp.Topics[0].Configs)
	}
	resp = request[*kmsg.CreateTopicsResponse](t, cl, createTopicsReq(false, "t1", 2, nil))
	if resp.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("second create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}

	// CreatePartitions grows the topic; shrinking is INVALID_PARTITIONS.
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.TimeoutMillis = 10000
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "t1", 5
	cp.Topics = append(cp.Topics, cpt)
	if r := request[*kmsg.CreatePartitionsResponse](t, cl, cp); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreatePartitions: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	if mt := metadataTopic(t, cl, "t1"); len(mt.Partitions) != 5 {
		t.Fatalf("after CreatePartitions: %d partitions, want 5", len(mt.Partitions))
	}
	cp.Topics[0].Count = 3
	if r := request[*kmsg.CreatePartitionsResponse](t, cl, cp); r.Topics[0].ErrorCode != kerr.InvalidPartitions.Code {
		t.Fatalf("shrinking CreatePartitions: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	// The new partition takes records.
	prod := newClient(t, p.Addr(), kgo.DefaultProduceTopic("t1"), kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx(t, 10*time.Second), &kgo.Record{Partition: 4, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce to a new partition: %v", err)
	}

	// DeleteTopics removes it; deleting again is UNKNOWN_TOPIC_OR_PARTITION.
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TimeoutMillis = 10000
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr("t1")
	dt.Topics = append(dt.Topics, dtt)
	dt.TopicNames = []string{"t1"}
	if r := request[*kmsg.DeleteTopicsResponse](t, cl, dt); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("DeleteTopics: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	if mt := metadataTopic(t, cl, "t1"); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("deleted topic still listed: %v", kerr.ErrorForCode(mt.ErrorCode))
	}
	if r := request[*kmsg.DeleteTopicsResponse](t, cl, dt); r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("second DeleteTopics: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
}

func describeTopicConfigs(t *testing.T, cl *kgo.Client, topic string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	req.Resources = append(req.Resources, rr)
	resp := request[*kmsg.DescribeConfigsResponse](t, cl, req)
	if err := kerr.ErrorForCode(resp.Resources[0].ErrorCode); err != nil {
		t.Fatalf("DescribeConfigs %s: %v", topic, err)
	}
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = c
	}
	return out
}

func alterConfigs(t *testing.T, cl *kgo.Client, topic string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) *kerr.Error {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeTopic, topic, ops
	req.Resources = append(req.Resources, rr)
	resp := request[*kmsg.IncrementalAlterConfigsResponse](t, cl, req)
	if e := kerr.ErrorForCode(resp.Resources[0].ErrorCode); e != nil {
		return e.(*kerr.Error)
	}
	return nil
}

func alterOp(op kmsg.IncrementalAlterConfigOp, name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Op, c.Name, c.Value = op, name, kmsg.StringPtr(value)
	return c
}

func TestTopicConfigsPersistAcrossRestart(t *testing.T) {
	p := brokertest.Start(t, brokertest.Set("log.retention.ms", "86400000"))
	cl := newClient(t, p.Addr())
	createTopic(t, cl, "cfg", 1, map[string]string{"segment.bytes": "1048576"})

	if e := alterConfigs(t, cl, "cfg",
		alterOp(kmsg.IncrementalAlterConfigOpSet, "max.message.bytes", "5000"),
		alterOp(kmsg.IncrementalAlterConfigOpAppend, "cleanup.policy", "compact"),
	); e != nil {
		t.Fatalf("IncrementalAlterConfigs: %v", e)
	}
	if e := alterConfigs(t, cl, "cfg", alterOp(kmsg.IncrementalAlterConfigOpSet, "max.message.bytes", "big")); e != kerr.InvalidConfig {
		t.Fatalf("bad value: %v, want INVALID_CONFIG", e)
	}
	check := func(when string) {
		t.Helper()
		got := describeTopicConfigs(t, cl, "cfg")
		want := []struct {
			name, value string
			source      kmsg.ConfigSource
		}{
			{"segment.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig},
			{"max.message.bytes", "5000", kmsg.ConfigSourceDynamicTopicConfig},
			{"cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig},
			{"retention.ms", "86400000", kmsg.ConfigSourceStaticBrokerConfig},
			{"retention.bytes", "-1", kmsg.ConfigSourceDefaultConfig},
		}
		for _, w := range want {
			c, ok := got[w.name]
			if !ok || deref(c.Value) != w.value || c.Source != w.source {
				t.Fatalf("%s: %s = %q (source %v), want %q (source %v)", when, w.name, deref(c.Value), c.Source, w.value, w.source)
			}
		}
	}
	check("before restart")
	p.Restart()
	cl = newClient(t, p.Addr())
	check("after restart")
	// The restored max.message.bytes is enforced.
	prod := newClient(t, p.Addr(), kgo.DefaultProduceTopic("cfg"), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	err := prod.ProduceSync(ctx(t, 10*time.Second), &kgo.Record{Key: []byte("k"), Value: make([]byte, 6000)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("6000-byte record after restart: %v, want MESSAGE_TOO_LARGE", err)
	}
}

func TestListOffsets(t *testing.T) {
	p := brokertest.Start(t)
	cl := newClient(t, p.Addr(), kgo.DefaultProduceTopic("lo"), kgo.DisableIdempotentWrite())
	createTopic(t, cl, "lo", 1, nil)
	if lo := listOffset(t, cl, "lo", 0, -1); lo.ErrorCode != 0 || lo.Offset != 0 {
		t.Fatalf("latest of an empty partition: %+v", lo)
	}
	// Three batches with client timestamps 1000, 2000, 3000.
	for i, ts := range []int64{1000, 2000, 3000} {
		r := &kgo.Record{Value: []byte{byte(i)}, Timestamp: time.UnixMilli(ts)}
		if err := cl.ProduceSync(ctx(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		ts         int64
		offset, at int64
	}{
		{-2, 0, -1},     // earliest
		{-1, 3, -1},     // latest: the high watermark
		{500, 0, 1000},  // before everything: the first record
		{2000, 1, 2000}, // exact
		{2500, 2, 3000}, // between: the next one
		{9999, -1, -1},  // after everything: none
	}
	for _, c := range cases {
		lo := listOffset(t, cl, "lo", 0, c.ts)
		if lo.ErrorCode != 0 || lo.Offset != c.offset || lo.Timestamp != c.at {
			t.Errorf("ListOffsets ts=%d: offset %d timestamp %d error %v, want offset %d timestamp %d", c.ts, lo.Offset, lo.Timestamp, kerr.ErrorForCode(lo.ErrorCode), c.offset, c.at)
		}
	}
	// A partition that does not exist, asked of the broker directly (the client would refuse
	// to route it).
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lo"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 7, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx(t, 10*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	if lo := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; lo.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("missing partition: %v", kerr.ErrorForCode(lo.ErrorCode))
	}
}

func TestDescribeClusterAndOffsetForLeaderEpoch(t *testing.T) {
	p := brokertest.Start(t, brokertest.NodeID(7))
	cl := newClient(t, p.Addr(), kgo.DefaultProduceTopic("ofle"), kgo.DisableIdempotentWrite())

	dc := request[*kmsg.DescribeClusterResponse](t, cl, kmsg.NewPtrDescribeClusterRequest())
	if dc.ErrorCode != 0 || dc.ClusterID != "kchaos-local" || dc.ControllerID != 7 || len(dc.Brokers) != 1 || dc.Brokers[0].NodeID != 7 {
		t.Fatalf("DescribeCluster: %+v", dc)
	}
	if hp := dc.Brokers[0].Host + ":" + itoa(dc.Brokers[0].Port); hp != p.Addr() {
		t.Fatalf("DescribeCluster broker at %s, want %s", hp, p.Addr())
	}

	createTopic(t, cl, "ofle", 1, nil)
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx(t, 10*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ask := func(epoch, current int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "ofle"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = 0, epoch, current
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return request[*kmsg.OffsetForLeaderEpochResponse](t, cl, req).Topics[0].Partitions[0]
	}
	// The only epoch is 0 and it is current: its end is the log end offset.
	if r := ask(0, -1); r.ErrorCode != 0 || r.LeaderEpoch != 0 || r.EndOffset != 5 {
		t.Fatalf("OffsetForLeaderEpoch(0): %+v", r)
	}
	// An epoch later than any known is UNDEFINED (-1, -1), as in Kafka's leader-epoch cache.
	if r := ask(3, -1); r.ErrorCode != 0 || r.LeaderEpoch != -1 || r.EndOffset != -1 {
		t.Fatalf("OffsetForLeaderEpoch(3): %+v", r)
	}
	// A current epoch the broker has not reached is UNKNOWN_LEADER_EPOCH.
	if r := ask(0, 2); r.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("OffsetForLeaderEpoch current=2: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestLoneBrokerAssignmentsAndNames: a lone broker takes explicit replica assignments that name
// only itself, refuses other brokers, RF 2 and names that collide once '.' and '_' are
// identified — what Kafka answers with one broker.
func TestLoneBrokerAssignmentsAndNames(t *testing.T) {
	p := brokertest.Start(t, brokertest.NodeID(4))
	cl := newClient(t, p.Addr())
	assigned := func(name string, replicas ...[]int32) kmsg.CreateTopicsResponseTopic {
		req := createTopicsReq(false, name, -1, nil)
		for i, r := range replicas {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), r
			req.Topics[0].ReplicaAssignment = append(req.Topics[0].ReplicaAssignment, a)
		}
		return request[*kmsg.CreateTopicsResponse](t, cl, req).Topics[0]
	}
	if st := assigned("mine", []int32{4}, []int32{4}); st.ErrorCode != 0 || st.NumPartitions != 2 || st.ReplicationFactor != 1 {
		t.Fatalf("create on this broker: %+v", st)
	}
	if mt := metadataTopic(t, cl, "mine"); mt.ErrorCode != 0 || len(mt.Partitions) != 2 || mt.Partitions[1].Leader != 4 {
		t.Fatalf("metadata of an assigned topic: %+v", mt)
	}
	if st := assigned("theirs", []int32{5}); st.ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("assignment naming an unknown broker: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	req := createTopicsReq(false, "rf2", 1, nil)
	req.Topics[0].ReplicationFactor = 2
	if st := request[*kmsg.CreateTopicsResponse](t, cl, req).Topics[0]; st.ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("RF 2 on one broker: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	createTopic(t, cl, "a.b", 1, nil)
	if st := request[*kmsg.CreateTopicsResponse](t, cl, createTopicsReq(false, "a_b", 1, nil)).Topics[0]; st.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("a_b beside a.b: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	grow := kmsg.NewPtrCreatePartitionsRequest()
	gt := kmsg.NewCreatePartitionsRequestTopic()
	gt.Topic, gt.Count = "mine", 3
	ga := kmsg.NewCreatePartitionsRequestTopicAssignment()
	ga.Replicas = []int32{4}
	gt.Assignment = append(gt.Assignment, ga)
	grow.Topics = append(grow.Topics, gt)
	if st := request[*kmsg.CreatePartitionsResponse](t, cl, grow).Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("CreatePartitions with an assignment: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	if mt := metadataTopic(t, cl, "mine"); len(mt.Partitions) != 3 {
		t.Fatalf("after CreatePartitions: %d partitions", len(mt.Partitions))
	}
}
