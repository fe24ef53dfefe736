package broker

// Bug switches: deliberate, documented faults in the broker's own logic, off by default, that
// the checker's mutation tests turn on (`--set kchaos.bug.NAME=true`) to prove a real run shows
// the anomaly each must cause. This is the complete list:
//
//   - kchaos.bug.ack-before-replication: acks=all is answered right after the leader's append,
//     before the ISR has copied the batch (as if acks=1); a leader kill then loses
//     acknowledged acks=all writes (the checker's "lost").
//   - kchaos.bug.lose-last-batch-on-restart: at start-up every partition drops the last batch
//     of its log, as if the tail never reached the disk although it was acknowledged (the
//     checker's "lost").
//   - kchaos.bug.txn-commit-on-abort: the transaction coordinator writes commit markers for
//     transactions it aborts (EndTxn abort, a new producer instance, timeout), so aborted
//     records become visible to read_committed and aborted transactional offsets are applied
//     (the checker's "aborted read").
//   - kchaos.bug.txn-offsets-before-marker: TxnOffsetCommit applies the offsets at once, as a
//     plain commit, instead of holding them until the transaction's commit marker; a
//     consume-transform-produce transaction that aborts still moves the group past its input
//     (the checker's exactly-once analysis: inputs missing from the output).
//
// Still to come from the checker issue's list: serving reads above the high watermark (its
// mutation run did not yet show the anomaly reliably) and skipping the idempotence window
// (the broker issues no producer ids yet).
const (
	bugAckBeforeReplication = "kchaos.bug.ack-before-replication"
	bugLoseLastBatch        = "kchaos.bug.lose-last-batch-on-restart"
	bugTxnCommitOnAbort     = "kchaos.bug.txn-commit-on-abort"
	bugTxnOffsetsEarly      = "kchaos.bug.txn-offsets-before-marker"
)

// bug reports whether bug switch name is on.
func (c *Config) bug(name string) bool { return c.propBool(name) }
