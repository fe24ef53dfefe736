package broker

// Bug switches: deliberate, documented faults in the broker's own logic, off by default, that
// the checker's mutation tests turn on (`--set kchaos.bug.NAME=true`) to prove a real run shows
// the anomaly each must cause. This is the complete list:
//
//   - kchaos.bug.ack-before-replication: acks=all is answered right after the leader's append,
//     before the ISR has copied the batch (as if acks=1); a leader kill then loses
//     acknowledged acks=all writes (the checker's "lost").
//   - kchaos.bug.lose-last-batch-on-restart: at start-up every partition drops the tail of its
//     log (the batches holding its last 10 records), as if the tail never reached the disk
//     although it was acknowledged (the checker's "lost").
//   - kchaos.bug.read-above-high-watermark: consumers' fetches read up to the leader's log end
//     offset and are told it is the high watermark, so they see records the ISR has not
//     copied; when the leader dies those records vanish or are rewritten at other offsets
//     (the checker's "inconsistent-offsets", and "aborted-read" for sends that then fail).
//   - kchaos.bug.skip-idempotence-window: idempotent (non-transactional) batches are appended
//     as if they carried no producer id, so a producer's retry of a batch that was written is
//     written again (the checker's "duplicate" under idempotence).
//   - kchaos.bug.txn-commit-on-abort: the transaction coordinator writes commit markers for
//     transactions it aborts (EndTxn abort, a new producer instance, timeout), so aborted
//     records become visible to read_committed and aborted transactional offsets are applied
//     (the checker's "aborted read").
//   - kchaos.bug.txn-split-markers: the transaction coordinator writes a transaction's
//     outcome marker only to its first partition (by topic, then partition) and the opposite
//     marker to the others, breaking atomicity: an aborted transaction's records become
//     visible on its other partitions (the checker's "aborted read") and a committed one's
//     vanish there ("lost").
//   - kchaos.bug.txn-offsets-before-marker: TxnOffsetCommit applies the offsets at once, as a
//     plain commit, instead of holding them until the transaction's commit marker; a
//     consume-transform-produce transaction that aborts still moves the group past its input
//     (the checker's exactly-once analysis: inputs missing from the output).
//   - kchaos.bug.serve-corrupt: a segment loaded from disk is served without the CRC32C check
//     of its batches on first read (storage.Options.TrustReads), so a batch damaged at rest
//     (the corrupt-file fault) reaches consumers, which refuse it and cannot read past it (the
//     checker's "lost"), instead of the broker handing the partition over and re-replicating it.
const (
	bugServeCorrupt         = "kchaos.bug.serve-corrupt"
	bugAckBeforeReplication = "kchaos.bug.ack-before-replication"
	bugLoseLastBatch        = "kchaos.bug.lose-last-batch-on-restart"
	bugReadAboveHW          = "kchaos.bug.read-above-high-watermark"
	bugSkipIdempotence      = "kchaos.bug.skip-idempotence-window"
	bugTxnCommitOnAbort     = "kchaos.bug.txn-commit-on-abort"
	bugTxnSplitMarkers      = "kchaos.bug.txn-split-markers"
	bugTxnOffsetsEarly      = "kchaos.bug.txn-offsets-before-marker"
)

// bug reports whether bug switch name is on.
func (c *Config) bug(name string) bool { return c.propBool(name) }
