package replica

// EpochEndOffset is a leader epoch with the end offset of its entries (Kafka's
// EpochEndOffset): the first offset after the epoch. Epoch -1 means no such epoch.
type EpochEndOffset struct {
	Epoch     int32
	EndOffset int64
}

// Truncation is where a follower's log must end before it fetches again.
type Truncation struct {
	// To is the new log end offset.
	To int64
	// Full means the whole log goes and it restarts empty at To (the leader's log start
	// offset is past everything the follower has).
	Full bool
	// Complete is false when the follower must ask again (fetch with its new last epoch)
	// because it did not know the epoch the leader answered with (KIP-279).
	Complete bool
}

// OnDivergingEpoch decides a follower's truncation when the leader answered its fetch with
// DivergingEpoch div (KIP-320): the end offset of the largest leader epoch not above the
// follower's last fetched epoch. local is the follower's own entry for div.Epoch (the largest
// epoch it has not above div.Epoch, with its end offset; Epoch -1 when it has none) and leo
// its log end offset. As in Kafka's KIP-279 rule:
//
//   - the leader knows no such epoch (div.Epoch -1): truncate to min(div.EndOffset, leo);
//   - the follower has div.Epoch too: truncate to the smaller of the two end offsets;
//   - the follower's largest epoch below it is older: truncate to that epoch's end and ask
//     again (Complete false);
//   - the follower has no epoch at or below it: truncate to min(div.EndOffset, leo).
func OnDivergingEpoch(div, local EpochEndOffset, leo int64) Truncation {
	switch {
	case div.Epoch < 0 || local.Epoch < 0:
		return Truncation{To: min(div.EndOffset, leo), Complete: true}
	case local.Epoch != div.Epoch:
		return Truncation{To: min(local.EndOffset, leo), Complete: false}
	default:
		return Truncation{To: min(local.EndOffset, div.EndOffset, leo), Complete: true}
	}
}

// OnOffsetOutOfRange decides a follower's truncation when the leader answered its fetch at
// fetchOffset with OFFSET_OUT_OF_RANGE, giving its log start offset and high watermark: below
// the leader's log start the follower starts over empty there; otherwise its log runs past
// the leader's, and it keeps only what the leader has committed (between 0 and fetchOffset).
func OnOffsetOutOfRange(fetchOffset, leaderLogStart, leaderHW int64) Truncation {
	if fetchOffset < leaderLogStart {
		return Truncation{To: leaderLogStart, Full: true, Complete: true}
	}
	return Truncation{To: max(min(leaderHW, fetchOffset), 0), Complete: true}
}
