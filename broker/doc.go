// Package broker is the kchaos reference broker: a Kafka-protocol server (franz-go kmsg
// codecs) with one handler file per API key, backed by the segmented log in broker/storage.
// Partition state carries leader epoch, high watermark and log end offset from the start so
// replication can build on it.
package broker
