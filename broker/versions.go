package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one API key the broker serves: the version range it advertises and its handler.
type api struct {
	key      kmsg.Key
	min, max int16
	handle   func(c *conn, req *request) (kmsg.Response, error)
	// internal APIs are served to the cluster's brokers on the controller listener only and
	// not advertised in ApiVersions, as in Kafka.
	internal bool
}

// apis is the single table of what the broker advertises in ApiVersions. Ranges cover what
// Sarama (default config and Version V4_0_0_0), franz-go, librdkafka 2.0 (kcat) and
// kafka-python 2.0 negotiate. Lower bounds follow Kafka 4.0 (KIP-896): Produce below v3 and
// Fetch below v4 would need the old message formats, which the broker does not speak. Upper
// bounds stop before versions whose semantics are not implemented (Produce v12+: transactions
// v2).
var apis = []api{
	{kmsg.Produce, 3, 11, handleProduce, false},
	{kmsg.Fetch, 4, 16, handleFetch, false},
	{kmsg.ListOffsets, 0, 11, handleListOffsets, false},
	{kmsg.Metadata, 0, 12, withListenerEndpoints(handleMetadata), false},
	{kmsg.ApiVersions, 0, 4, handleApiVersions, false},
	{kmsg.CreateTopics, 2, 7, handleCreateTopics, false},
	{kmsg.DeleteTopics, 1, 6, handleDeleteTopics, false},
	{kmsg.DeleteRecords, 0, 2, handleDeleteRecords, false},
	{kmsg.OffsetForLeaderEpoch, 2, 4, handleOffsetForLeaderEpoch, false},
	{kmsg.DescribeConfigs, 1, 4, handleDescribeConfigs, false},
	{kmsg.AlterConfigs, 0, 2, handleAlterConfigs, false},
	{kmsg.CreatePartitions, 0, 3, handleCreatePartitions, false},
	{kmsg.IncrementalAlterConfigs, 0, 1, handleIncrementalAlterConfigs, false},
	{kmsg.DescribeLogDirs, 1, 5, handleDescribeLogDirs, false},
	{kmsg.ElectLeaders, 0, 2, handleElectLeaders, false},
	{kmsg.AlterPartitionAssignments, 0, 1, handleAlterPartitionReassignments, false},
	{kmsg.ListPartitionReassignments, 0, 0, handleListPartitionReassignments, false},
	{kmsg.DescribeCluster, 0, 1, withListenerEndpoints(handleDescribeCluster), false},
	{kmsg.OffsetCommit, 2, 9, handleOffsetCommit, false},
	{kmsg.OffsetFetch, 1, 9, handleOffsetFetch, false},
	{kmsg.FindCoordinator, 0, 5, withListenerEndpoints(handleFindCoordinator), false},
	{kmsg.JoinGroup, 2, 9, handleJoinGroup, false},
	{kmsg.Heartbeat, 0, 4, handleHeartbeat, false},
	{kmsg.LeaveGroup, 0, 5, handleLeaveGroup, false},
	{kmsg.SyncGroup, 0, 5, handleSyncGroup, false},
	{kmsg.DescribeGroups, 0, 5, handleDescribeGroups, false},
	{kmsg.ListGroups, 0, 5, handleListGroups, false},
	{kmsg.DeleteGroups, 0, 2, handleDeleteGroups, false},
	{kmsg.OffsetDelete, 0, 0, handleOffsetDelete, false},
	{kmsg.InitProducerID, 0, 5, handleInitProducerID, false},
	{kmsg.WriteTxnMarkers, 0, 1, handleWriteTxnMarkers, false},
	{kmsg.DescribeProducers, 0, 0, handleDescribeProducers, false},
	{kmsg.AddPartitionsToTxn, 0, 3, handleAddPartitionsToTxn, false},
	{kmsg.AddOffsetsToTxn, 0, 3, handleAddOffsetsToTxn, false},
	{kmsg.EndTxn, 0, 3, handleEndTxn, false},
	{kmsg.TxnOffsetCommit, 0, 3, handleTxnOffsetCommit, false},
	{kmsg.DescribeTransactions, 0, 0, handleDescribeTransactions, false},
	{kmsg.ListTransactions, 0, 1, handleListTransactions, false},
	{kmsg.SASLHandshake, 0, 1, handleSaslHandshake, false},
	{kmsg.SASLAuthenticate, 0, 2, handleSaslAuthenticate, false},
	{kmsg.DescribeUserSCRAMCredentials, 0, 0, handleDescribeUserScramCredentials, false},
	{kmsg.AlterUserSCRAMCredentials, 0, 0, handleAlterUserScramCredentials, false},
	{kmsg.AlterPartition, 0, 1, handleAlterPartition, true},
	{kmsg.BrokerRegistration, 0, 0, handleBrokerRegistration, true},
	{kmsg.BrokerHeartbeat, 0, 0, handleBrokerHeartbeat, true},
}

// onControllerListener reports whether a is served on the controller listener: the internal
// controller APIs, the admin requests brokers forward to the active controller, and
// ApiVersions. The client listener serves every API but the internal ones.
func (a *api) onControllerListener() bool {
	switch a.key {
	case kmsg.ApiVersions, kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.CreatePartitions, kmsg.IncrementalAlterConfigs,
		kmsg.AlterUserSCRAMCredentials, kmsg.ElectLeaders, kmsg.AlterPartitionAssignments, kmsg.ListPartitionReassignments:
		return true
	}
	return a.internal
}

// apiByKey indexes apis; nil entries are keys the broker does not serve.
var apiByKey [128]*api

// advertised is the ApiVersions answer, built from apis.
var advertised []kmsg.ApiVersionsResponseApiKey

func init() {
	for i := range apis {
		a := &apis[i]
		apiByKey[a.key] = a
		if a.internal {
			continue
		}
		advertised = append(advertised, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key.Int16(), MinVersion: a.min, MaxVersion: a.max})
	}
}

// lookupAPI returns the served API for key, or nil.
func lookupAPI(key int16) *api {
	if key < 0 || int(key) >= len(apiByKey) {
		return nil
	}
	return apiByKey[key]
}
