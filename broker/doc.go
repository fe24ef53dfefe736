// Package broker is the kchaos reference broker: a Kafka-protocol server (franz-go kmsg
// codecs) with one handler file per API key, backed by the segmented log in broker/storage.
// Partition state carries leader epoch, high watermark and log end offset from the start so
// replication can build on it.
//
// Consumer groups (Kafka's classic protocol) are coordinated by coordinator.go around the
// pure state machine in broker/group; committed offsets and group metadata live in the
// compacted internal topic __consumer_offsets (offsets_topic.go), which is replayed at start-up.
//
// Transactions (KIP-98) are coordinated by txn_coordinator.go around the pure state machine in
// broker/txn; each transactional id's state lives in the compacted internal topic
// __transaction_state (txn_log.go), loaded by the partition's leader, and completing
// transactions' markers are sent as WriteTxnMarkers to the partitions' leaders
// (txn_markers.go). Transactional offset commits stay pending in the group coordinator until
// their marker reaches __consumer_offsets (txn_offsets.go).
package broker
