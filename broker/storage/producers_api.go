package storage

// LastStableOffset returns the last stable offset for high watermark hw: the first offset of
// the oldest transaction that is open, or completed with a marker at or above hw; hw when
// there is none. read_committed consumers read up to it.
func (l *Log) LastStableOffset(hw int64) int64 { return l.producers.firstUnstableOffset(hw) }

// AbortedTxns returns the aborted transactions that overlap offsets [from, to), in marker
// order (Fetch's AbortedTransactions for read_committed).
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn { return l.producers.abortedBetween(from, to) }

// Producers returns the state of every producer known to the log, by producer id
// (DescribeProducers).
func (l *Log) Producers() []ProducerInfo { return l.producers.infos() }
