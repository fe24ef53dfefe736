// Package broker is the kchaos reference broker: a Kafka-protocol server (franz-go kmsg
// codecs) with one handler file per API key, backed by the segmented log in broker/storage.
// Partition state carries leader epoch, high watermark and log end offset from the start so
// replication can build on it.
//
// Consumer groups (Kafka's classic protocol) are coordinated by coordinator.go around the
// pure state machine in broker/group; committed offsets and group metadata live in the
// compacted internal topic __consumer_offsets (offsets_topic.go), which is replayed at start-up.
package broker
