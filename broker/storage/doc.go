// Package storage is the durable segmented log of the kchaos reference broker: one Log per
// partition directory, holding record batches (magic v2) byte for byte as produced, with
// Kafka's file layout and recovery rules.
//
// # Layout
//
// A log directory holds segments named by their 20-digit zero-padded base offset:
// <base>.log (concatenated batches), <base>.index (sparse offset index: relative offset
// uint32 + position uint32, one entry per index.interval.bytes) and <base>.timeindex
// (timestamp int64 + relative offset uint32). Beside them: leader-epoch-checkpoint (Kafka's
// text format), recovery-point-offset-checkpoint, log-start-offset-checkpoint and, after a
// clean Close, .kafka_cleanshutdown. Small files are written atomically (tmp, fsync, rename,
// directory fsync). The active segment rolls when an append would exceed segment.bytes, when
// it is older than segment.ms, or when an index would exceed segment.index.bytes.
//
// # Appends and reads
//
// Appends walk batch headers only (no per-record work), rewrite BaseOffset and
// PartitionLeaderEpoch in place (outside the CRC), stamp LogAppendTime when asked (CRC32C
// recomputed) and write all batches with one write call. A failed write (ENOSPC) is undone by
// truncating the file back, and the error wraps ErrStorage. fsync happens only per
// flush.messages / flush.ms or on Flush, like Kafka. Reads return file ranges (Chunks) of whole
// batches from one segment, for sendfile; segments stay open until the ReadResult is released.
//
// # Producer state
//
// Each log keeps Kafka's ProducerStateManager state (producers.go): per producer id the
// epoch, coordinator epoch, open transaction and the last 5 batches (sequences, offsets,
// timestamp). AppendAsLeader checks batches with a producer id against it and writes nothing
// when a check fails or the batch duplicates one of the last 5 (AppendInfo.Duplicate);
// AppendAsFollower and recovery apply batches without checks. Transactional batches open a
// transaction; a control batch (commit/abort marker) closes it, and an abort enters the
// aborted-transaction index. LastStableOffset and AbortedTxns serve read_committed fetches.
// The state is snapshotted to <offset>.snapshot (the state of offsets below offset; binary,
// CRC32C) when a segment rolls and on Close. Open, TruncateTo and TruncateFullyAndStartAt
// rebuild it from the newest snapshot at or below the log end offset plus a replay of the
// batches after it (snapshots above the log end are deleted); retention keeps the newest
// snapshot at or below the log start offset. Maintain expires producers idle longer than
// Options.ProducerIDExpiration (producer.id.expiration.ms) that have no open transaction.
//
// # Retention and compaction
//
// Maintain takes the partition's high watermark. Retention (cleanup.policy delete) deletes
// whole segments from the oldest on — past the log start offset, then by retention.bytes, then
// by retention.ms — but, as in Kafka, only segments whose every offset is below the high
// watermark; with the high watermark at the log end even the active segment goes (a new one
// is rolled first) and the log start offset becomes the log end offset. The cleaner
// (cleanup.policy compact, cleaner.go) follows Kafka's LogCleaner: it cleans only segments
// below the one holding the last stable offset or the active segment, keeps each key's
// latest record, drops records of aborted transactions and records without a key, keeps
// tombstones and transaction markers until a delete horizon (delete.retention.ms after the
// pass that first found them removable, stored in the batch as KIP-534 does), and keeps the
// last batch of every active producer, emptied if need be, so idempotence and fencing
// survive on replicas that copy the cleaned log.
//
// # Recovery
//
// After a clean shutdown the index files are trusted. Otherwise every segment from the one
// holding the recovery point onward is rescanned: each batch is checked (length bounds, magic,
// CRC32C, increasing offsets); the first bad batch and everything after it, including later
// segments, is truncated away; indexes are rebuilt. Segments below the recovery point keep
// their index files unless those fail a sanity check (then they are rebuilt). The recovery
// point moves to the log end offset on every flush; it is checkpointed by Flush, Maintain and
// Close.
//
// # Differences from Kafka
//
//   - Indexes live in memory and are written to their files when a segment rolls, on Flush
//     and on Close, instead of being memory-mapped; the active segment is always rescanned
//     after an unclean shutdown.
//   - Read excludes a batch that contains maxOffset, like Kafka, and returns whole batches
//     only (Kafka may send a trailing partial batch).
//   - The cleaner rewrites segments one to one without merging them into groups, runs
//     whenever the cleanable range holds uncleaned data (no min.cleanable.dirty.ratio or
//     compaction lags; the first pass after Open cleans everything), and leaves the
//     aborted-transaction index alone (entries whose records it removed stay; read_committed
//     clients ignore them).
//   - AppendAsFollower accepts a first batch above LogEndOffset (a gap left by the leader's
//     compaction), as Kafka does.
//   - Producer snapshots keep all 5 remembered batches per producer (Kafka keeps only the
//     last), so duplicates of older in-flight batches are recognised after a restart too.
//     The aborted-transaction index lives in the snapshot instead of per-segment .txnindex
//     files.
package storage
