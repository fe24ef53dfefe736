// Package broker is the kchaos reference broker: a Kafka-protocol server (franz-go kmsg
// codecs) with one handler file per API key, backed by the segmented log in broker/storage.
// Partition state carries leader epoch, high watermark and log end offset from the start so
// replication can build on it.
//
// Fetch serves incremental fetch sessions (KIP-227) from a bounded per-broker cache
// (fetch_session.go); ListOffsets finds records by time inside their batches and answers
// every sentinel timestamp up to v11 as Kafka does without tiered storage.
//
// Consumer groups (Kafka's classic protocol) are coordinated by coordinator.go around the
// pure state machine in broker/group; committed offsets and group metadata live in the
// compacted internal topic __consumer_offsets (offsets_topic.go), which is replayed at start-up.
//
// Idempotent producers (KIP-98, KIP-360) get ids from InitProducerId (producer_ids.go); each
// partition's log checks their sequences and recognises retries (storage/producers.go), and
// followers rebuild that state from the batches they replicate, so it moves with leadership.
// The partition side of transactions is here too: WriteTxnMarkers writes commit/abort
// markers, read_committed Fetch and ListOffsets stop at the last stable offset, and Fetch
// returns the aborted transactions; DescribeProducers shows the producer state.
// Transactions (KIP-98) are coordinated by txn_coordinator.go around the pure state machine in
// broker/txn; each transactional id's state lives in the compacted internal topic
// __transaction_state (txn_log.go), loaded by the partition's leader, and completing
// transactions' markers are sent as WriteTxnMarkers to the partitions' leaders
// (txn_markers.go). Transactional offset commits stay pending in the group coordinator until
// their marker reaches __consumer_offsets (txn_offsets.go).
package broker
