package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// epochEntry says leader epoch Epoch started at offset StartOffset.
type epochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is the leader-epoch cache of KIP-101/279: (epoch, start offset) pairs with both
// strictly increasing. It is a pure value; Log persists it in leaderEpochFile.
type epochCache struct{ entries []epochEntry }

const leaderEpochFile = "leader-epoch-checkpoint"

// latest returns the latest epoch and whether any is known.
func (c *epochCache) latest() (int32, bool) {
	if len(c.entries) == 0 {
		return -1, false
	}
	return c.entries[len(c.entries)-1].Epoch, true
}

// assign records that epoch starts at startOffset. Like Kafka it ignores an epoch that is
// already the latest, and removes entries the new one contradicts (epoch or start offset not
// below the new entry's). It reports whether the cache changed.
func (c *epochCache) assign(epoch int32, startOffset int64) bool {
	if e, ok := c.latest(); ok && e == epoch {
		return false
	}
	if n := len(c.entries); n > 0 && c.entries[n-1].Epoch > epoch {
		// An older epoch arriving late (follower appending batches of an older leader after a
		// newer one) is not recorded; Kafka logs and ignores it too.
		return false
	}
	kept := c.entries[:0]
	for _, e := range c.entries {
		if e.Epoch < epoch && e.StartOffset < startOffset {
			kept = append(kept, e)
		}
	}
	c.entries = append(kept, epochEntry{Epoch: epoch, StartOffset: startOffset})
	return true
}

// endOffsetFor answers OffsetForLeaderEpoch with Kafka's semantics: for the latest epoch the
// log end offset; otherwise the largest known epoch <= requested and the start offset of the
// first larger epoch; (-1, -1) when requested is above every known epoch or the cache is empty.
func (c *epochCache) endOffsetFor(requested int32, logEndOffset int64) (int32, int64) {
	if requested < 0 {
		return -1, -1
	}
	if e, ok := c.latest(); ok && e == requested {
		return requested, logEndOffset
	}
	higher := -1
	for i, e := range c.entries {
		if e.Epoch > requested {
			higher = i
			break
		}
	}
	if higher < 0 {
		return -1, -1
	}
	if higher == 0 {
		return requested, c.entries[0].StartOffset
	}
	return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
}

// truncateFromEnd removes entries starting at or after offset (follower truncation).
func (c *epochCache) truncateFromEnd(offset int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= offset {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// truncateFromStart drops entries wholly below the new log start offset, keeping the last of
// them moved up to start at it.
func (c *epochCache) truncateFromStart(offset int64) bool {
	i := 0
	for i < len(c.entries) && c.entries[i].StartOffset < offset {
		i++
	}
	if i == 0 {
		return false
	}
	last := c.entries[i-1]
	if i < len(c.entries) && c.entries[i].StartOffset == offset {
		c.entries = append(c.entries[:0], c.entries[i:]...)
		return true
	}
	last.StartOffset = offset
	rest := append([]epochEntry{last}, c.entries[i:]...)
	c.entries = rest
	return true
}

// encode writes Kafka's checkpoint format: version line "0", entry count, "epoch offset" lines.
func (c *epochCache) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b.Bytes()
}

// decodeEpochCache parses the checkpoint format written by encode.
func decodeEpochCache(data []byte) (epochCache, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 2 || lines[0] != "0" {
		return epochCache{}, fmt.Errorf("%w: leader epoch checkpoint header", ErrCorrupt)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n != len(lines)-2 {
		return epochCache{}, fmt.Errorf("%w: leader epoch checkpoint count", ErrCorrupt)
	}
	var c epochCache
	for _, ln := range lines[2:] {
		var e epochEntry
		if _, err := fmt.Sscanf(ln, "%d %d", &e.Epoch, &e.StartOffset); err != nil {
			return epochCache{}, fmt.Errorf("%w: leader epoch checkpoint line %q", ErrCorrupt, ln)
		}
		if n := len(c.entries); n > 0 && (e.Epoch <= c.entries[n-1].Epoch || e.StartOffset < c.entries[n-1].StartOffset) {
			return epochCache{}, fmt.Errorf("%w: leader epoch checkpoint not increasing", ErrCorrupt)
		}
		c.entries = append(c.entries, e)
	}
	return c, nil
}
