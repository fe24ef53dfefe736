package broker

// onTxnMarker tells the group coordinator that a transaction of producerID ended on
// __consumer_offsets partition partition (commit or abort), so its pending transactional
// offset commits become visible or are dropped. Transactional offset commits
// (TxnOffsetCommit) do not exist yet, so there is nothing pending.
func (c *coordinator) onTxnMarker(partition int32, producerID int64, commit bool) {}
