package broker

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzRequest feeds arbitrary frames (a request without its size prefix) through the same
// parse and handle path a connection uses, against a broker on a temporary directory, and
// encodes whatever response comes back. Handlers run without the connection's panic guard, so
// any panic fails. Seeds are valid requests of every served API at every advertised version.
func FuzzRequest(f *testing.F) {
	b := startInProcess(f, Config{NodeID: 1}, nil)
	createTestTopic(f, b, "fuzz", 2)
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, a := range apis {
		for v := a.min; v <= a.max; v++ {
			req := seedRequest(a.key)
			req.SetVersion(v)
			f.Add(formatter.AppendRequest(nil, req, 7)[4:])
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		c := &conn{b: b, log: b.log}
		defer c.releaseParts()
		req, err := c.parse(frame)
		if err == errUnsupportedAPIVersions {
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.ApiKeys = advertised
			resp.AppendTo(nil)
			return
		}
		if err != nil {
			return
		}
		tame(req.msg)
		resp, err := lookupAPI(req.key).handle(c, req)
		if err != nil || resp == nil {
			return
		}
		resp.SetVersion(req.version)
		resp.AppendTo(nil)
	})
}

// tame bounds what one fuzzed request may cost: no long polls, few new partitions.
func tame(req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		r.MaxWaitMillis = 0
	case *kmsg.CreateTopicsRequest:
		for i := range r.Topics {
			r.Topics[i].NumPartitions = min(r.Topics[i].NumPartitions, 3)
			if len(r.Topics[i].ReplicaAssignment) > 3 {
				r.Topics[i].ReplicaAssignment = r.Topics[i].ReplicaAssignment[:3]
			}
		}
	case *kmsg.CreatePartitionsRequest:
		for i := range r.Topics {
			r.Topics[i].Count = min(r.Topics[i].Count, 5)
		}
	case *kmsg.DeleteRecordsRequest:
		r.TimeoutMillis = min(r.TimeoutMillis, 10)
	}
}

// seedRequest returns a meaningful request of key about topic "fuzz".
func seedRequest(key kmsg.Key) kmsg.Request {
	topic := "fuzz"
	switch key {
	case kmsg.Produce:
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = 1, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = seedBatch()
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.Fetch:
		r := kmsg.NewPtrFetchRequest()
		r.ReplicaID, r.MaxBytes = -1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.ListOffsets:
		r := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = 0
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.Metadata:
		r := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = &topic
		r.Topics = append(r.Topics, mt)
		return r
	case kmsg.CreateTopics:
		r := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "fuzz-new", 2, 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("1000")
		rt.Configs = append(rt.Configs, c)
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.DeleteTopics:
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TopicNames = []string{"fuzz-new"}
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = kmsg.StringPtr("fuzz-new")
		r.Topics = append(r.Topics, dt)
		return r
	case kmsg.OffsetForLeaderEpoch:
		r := kmsg.NewPtrOffsetForLeaderEpochRequest()
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		rt.Partitions = append(rt.Partitions, kmsg.NewOffsetForLeaderEpochRequestTopicPartition())
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.DescribeConfigs:
		r := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		r.Resources = append(r.Resources, rr)
		for _, name := range []string{"", "1"} {
			br := kmsg.NewDescribeConfigsRequestResource()
			br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, name
			r.Resources = append(r.Resources, br)
		}
		r.IncludeSynonyms, r.IncludeDocumentation = true, true
		return r
	case kmsg.CreatePartitions:
		r := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, 3
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.IncrementalAlterConfigs:
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name, c.Value = kmsg.IncrementalAlterConfigOpAppend, "cleanup.policy", kmsg.StringPtr("compact")
		rr.Configs = append(rr.Configs, c)
		r.Resources = append(r.Resources, rr)
		br := kmsg.NewIncrementalAlterConfigsRequestResource()
		br.ResourceType = kmsg.ConfigResourceTypeBroker
		bc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		bc.Op, bc.Name, bc.Value = kmsg.IncrementalAlterConfigOpSet, "log.retention.ms", kmsg.StringPtr("3600000")
		br.Configs = append(br.Configs, bc)
		r.Resources = append(r.Resources, br)
		return r
	case kmsg.AlterConfigs:
		r := kmsg.NewPtrAlterConfigsRequest()
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("60000")
		rr.Configs = append(rr.Configs, c)
		r.Resources = append(r.Resources, rr)
		return r
	case kmsg.DeleteRecords:
		r := kmsg.NewPtrDeleteRecordsRequest()
		r.TimeoutMillis = 10
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Offset = -1
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.DescribeLogDirs:
		r := kmsg.NewPtrDescribeLogDirsRequest()
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0, 1}
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.ElectLeaders:
		r := kmsg.NewPtrElectLeadersRequest()
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0, 1}
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.AlterPartitionAssignments:
		r := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Replicas = []int32{1}
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	case kmsg.ListPartitionReassignments:
		r := kmsg.NewPtrListPartitionReassignmentsRequest()
		rt := kmsg.NewListPartitionReassignmentsRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		r.Topics = append(r.Topics, rt)
		return r
	}
	return kmsg.RequestForKey(key.Int16())
}

// seedBatch is a valid one-record magic-2 batch.
func seedBatch() []byte {
	rec := kmsg.Record{Value: []byte("v")}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	rb := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil)}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[batchLength:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[batchCRC:], crc32.Checksum(out[batchAttributes:], castagnoli))
	return out
}
