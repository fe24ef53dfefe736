// Package broker is the kchaos reference broker: a Kafka-protocol server (franz-go kmsg
// codecs) with one handler file per API key (NN_name.go, each opening with its versions and
// behaviour), backed by the segmented log in broker/storage.
//
// # One mode
//
// Every broker is a node of a cluster with a KRaft-style controller quorum (broker/controller,
// on hashicorp/raft); there is no separate single-node code path. A broker started without
// voters is a cluster of one: the only voter of its own quorum, on its own controller listener
// (an ephemeral port unless ControllerListen says otherwise), with Raft timeouts short enough
// that it elects itself within tens of milliseconds. Its topics live in the quorum's Raft log,
// it registers with itself, leads every partition with an ISR of one (so acks=-1 is acks=1,
// as in Kafka with RF=1), and its internal topics get one replica because their replication
// factor is capped at the number of live brokers. A client cannot tell it from a Kafka broker
// in combined mode with RF=1.
//
// The pieces, in the order a request meets them:
//
//   - cluster.go starts the quorum node, registers and heartbeats on the lifecycle channel to
//     the active controller's controller listener, and follows the metadata image
//     (imageLoop); client requests wait until the broker has caught up (conn.go).
//   - cluster_apply.go applies each image: installs the dynamic broker configs (KIP-226,
//     dynamic_config.go), opens the logs of assigned partitions, deletes those of deleted
//     topics and of replicas reassigned away (and, once caught up, stray logs left from while
//     the broker was down), and feeds each partition's assignment to its replica state.
//   - Metadata, DescribeCluster, FindCoordinator and DescribeConfigs answer from the image;
//     CreateTopics, DeleteTopics, CreatePartitions, IncrementalAlterConfigs (and the older
//     AlterConfigs), ElectLeaders, AlterPartitionReassignments and ListPartitionReassignments
//     are decided by the active controller, forwarded there by other brokers (admin.go).
//     DeleteRecords is answered by the partitions' leaders, DescribeLogDirs by each broker
//     for its own data directory.
//   - partition.go holds a partition's log and its replica state machine (broker/replica):
//     leadership, ISR, high watermark, followers' progress. replication.go drives it on the
//     leader (follower fetches, ISR shrink and expansion through AlterPartition, acks=all
//     waits); fetcher.go on followers (replica fetches, truncation, the leader's high
//     watermark). The decisions are broker/replica's; these files do the I/O.
//
// # Coordinators
//
// Fetch serves incremental fetch sessions (KIP-227) from a bounded per-broker cache
// (fetch_session.go); ListOffsets finds records by time inside their batches and answers
// every sentinel timestamp up to v11 as Kafka does without tiered storage.
//
// Consumer groups (Kafka's classic protocol) are coordinated by coordinator.go around the
// pure state machine in broker/group; committed offsets and group metadata live in the
// compacted internal topic __consumer_offsets (offsets_topic.go), loaded by each partition's
// leader when it becomes leader.
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
//
// # Locks
//
// Broker.mu before partition.appendMu before partition.mu; the coordinators' mutexes come
// before all three (they append to internal topics under their own lock). The replica state
// machine takes no lock of its own: partition.mu guards it. LOCKS.md has the whole order.
package broker
