package storage

import (
	"math"
	"strings"
	"time"
)

// Config holds the topic configs that shape a partition log; names follow Kafka's topic
// configs, and zero values mean Kafka's defaults.
type Config struct {
	// SegmentBytes is segment.bytes: roll the active segment before it would exceed this size;
	// default 1 GiB, capped at 2 GiB - 1 because index positions are uint32 like Kafka's int32.
	SegmentBytes int64
	// SegmentMs is segment.ms: roll a non-empty active segment older than this; default 7 days.
	SegmentMs time.Duration
	// IndexIntervalBytes is index.interval.bytes: bytes between offset index entries; default 4096.
	IndexIntervalBytes int
	// SegmentIndexBytes is segment.index.bytes: roll when an index would exceed this size;
	// default 10 MiB.
	SegmentIndexBytes int
	// FlushMessages is flush.messages: fsync after this many records; default never.
	FlushMessages int64
	// FlushMs is flush.ms: fsync when data is older than this, checked by Maintain; default never.
	FlushMs time.Duration
	// RetentionMs is retention.ms: delete segments whose newest batch is older; default 7 days;
	// negative means unlimited.
	RetentionMs time.Duration
	// RetentionBytes is retention.bytes: delete oldest segments while the log is larger;
	// 0 means the default, unlimited. Use NoRetentionBytes (-1) to say unlimited explicitly,
	// and RetentionBytesZero to ask for Kafka's retention.bytes=0.
	RetentionBytes int64
	// CleanupPolicy is cleanup.policy: "delete" (default), "compact" or "compact,delete".
	CleanupPolicy string
	// DeleteRetentionMs is delete.retention.ms: how long compaction keeps tombstones; default 1 day.
	DeleteRetentionMs time.Duration
}

// Retention byte sentinels for Config.RetentionBytes.
const (
	NoRetentionBytes   int64 = -1
	RetentionBytesZero int64 = math.MinInt64
)

// withDefaults returns c with zero values replaced by Kafka's defaults.
func (c Config) withDefaults() Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.SegmentBytes > math.MaxInt32 {
		c.SegmentBytes = math.MaxInt32
	}
	if c.SegmentMs <= 0 {
		c.SegmentMs = 7 * 24 * time.Hour
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = 4096
	}
	if c.SegmentIndexBytes <= 0 {
		c.SegmentIndexBytes = 10 << 20
	}
	if c.SegmentIndexBytes < offsetEntrySize+timeEntrySize {
		c.SegmentIndexBytes = offsetEntrySize + timeEntrySize
	}
	if c.FlushMessages <= 0 {
		c.FlushMessages = math.MaxInt64
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = 7 * 24 * time.Hour
	}
	switch c.RetentionBytes {
	case 0:
		c.RetentionBytes = NoRetentionBytes
	case RetentionBytesZero:
		c.RetentionBytes = 0
	}
	if c.CleanupPolicy == "" {
		c.CleanupPolicy = "delete"
	}
	if c.DeleteRetentionMs <= 0 {
		c.DeleteRetentionMs = 24 * time.Hour
	}
	return c
}

func (c Config) compact() bool { return strings.Contains(c.CleanupPolicy, "compact") }
func (c Config) delete() bool  { return strings.Contains(c.CleanupPolicy, "delete") }
