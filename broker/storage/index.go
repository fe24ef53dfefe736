package storage

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Index entry sizes on disk, as in Kafka: the offset index maps a relative offset (uint32) to
// a file position (uint32); the time index maps a timestamp (int64) to a relative offset.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// offsetEntry says the batch at Pos in the segment has base offset segment.base+Rel.
type offsetEntry struct{ Rel, Pos uint32 }

// timeEntry says the segment's largest timestamp reached TS first at offset segment.base+Rel.
type timeEntry struct {
	TS  int64
	Rel uint32
}

// floorOffset returns the entry with the largest Rel <= rel, or {0,0} when none.
func floorOffset(idx []offsetEntry, rel uint32) offsetEntry {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].Rel > rel })
	if i == 0 {
		return offsetEntry{}
	}
	return idx[i-1]
}

// floorPos returns the entry with the largest Pos <= pos, or {0,0} when none.
func floorPos(idx []offsetEntry, pos uint32) offsetEntry {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].Pos > pos })
	if i == 0 {
		return offsetEntry{}
	}
	return idx[i-1]
}

// floorTime returns the entry with the largest TS <= ts and whether one exists.
func floorTime(idx []timeEntry, ts int64) (timeEntry, bool) {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].TS > ts })
	if i == 0 {
		return timeEntry{}, false
	}
	return idx[i-1], true
}

func encodeOffsetIndex(idx []offsetEntry) []byte {
	b := make([]byte, len(idx)*offsetEntrySize)
	for i, e := range idx {
		binary.BigEndian.PutUint32(b[i*offsetEntrySize:], e.Rel)
		binary.BigEndian.PutUint32(b[i*offsetEntrySize+4:], e.Pos)
	}
	return b
}

func encodeTimeIndex(idx []timeEntry) []byte {
	b := make([]byte, len(idx)*timeEntrySize)
	for i, e := range idx {
		binary.BigEndian.PutUint64(b[i*timeEntrySize:], uint64(e.TS))
		binary.BigEndian.PutUint32(b[i*timeEntrySize+8:], e.Rel)
	}
	return b
}

// decodeOffsetIndex parses and sanity-checks an offset index for a log of logSize bytes:
// whole entries, strictly increasing offsets and positions, positions inside the log.
func decodeOffsetIndex(b []byte, logSize int64) ([]offsetEntry, error) {
	if len(b)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("%w: offset index size %d", ErrCorrupt, len(b))
	}
	idx := make([]offsetEntry, len(b)/offsetEntrySize)
	for i := range idx {
		e := offsetEntry{
			Rel: binary.BigEndian.Uint32(b[i*offsetEntrySize:]),
			Pos: binary.BigEndian.Uint32(b[i*offsetEntrySize+4:]),
		}
		if i > 0 && (e.Rel <= idx[i-1].Rel || e.Pos <= idx[i-1].Pos) {
			return nil, fmt.Errorf("%w: offset index entry %d not increasing", ErrCorrupt, i)
		}
		if int64(e.Pos)+batchHeaderSize > logSize {
			return nil, fmt.Errorf("%w: offset index entry %d beyond log", ErrCorrupt, i)
		}
		idx[i] = e
	}
	return idx, nil
}

// decodeTimeIndex parses and sanity-checks a time index (timestamps and offsets increasing).
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("%w: time index size %d", ErrCorrupt, len(b))
	}
	idx := make([]timeEntry, len(b)/timeEntrySize)
	for i := range idx {
		e := timeEntry{
			TS:  int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			Rel: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if i > 0 && (e.TS <= idx[i-1].TS || e.Rel < idx[i-1].Rel) {
			return nil, fmt.Errorf("%w: time index entry %d not increasing", ErrCorrupt, i)
		}
		idx[i] = e
	}
	return idx, nil
}
