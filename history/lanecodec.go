package history

import (
	"encoding/binary"
	"strings"
	"unsafe"
)

// A lane holds its events in a compact binary form until the flusher writes them out as
// JSON lines. Most events are sends, polls without records and the like: a few numbers and
// short strings. Encoding those lines in full under the lane's lock put about 110 bytes per
// event into the lane, and those bytes travelled from the writing goroutine's core to the
// flusher's and the lane's buffer back again; on two shared cores that traffic, not the
// formatting, was most of what a history cost a producer (a send's two events cost its
// client about 1,100ns of CPU with full lines in the lane, about 400ns with 55 bytes fewer).
// So a lane keeps such an event in about 20 bytes and the flusher formats it into its own
// buffer. An event with records, offsets or a nested object keeps its encoded tail, as
// before (laneRaw).
//
// A compact event is, in order: its type (laneInvoke..laneInfo), its function (index in
// laneFs), flags (laneTopic, laneKey, laneValue, laneError, laneTxn), the process, partition
// and offset as varints, then the topic (when laneTopic: it differs from the lane's last
// compact event's), key, value and error as a uvarint length and the bytes, and the TxnID as
// a varint, each only when its flag is set.
const (
	laneInvoke byte = iota
	laneOK
	laneFail
	laneInfo
	// laneRaw is followed by the event's encoded tail (prefix and rest) up to its end.
	laneRaw byte = 0xff
)

// laneTypes are the event types a compact event names, by their laneInvoke..laneInfo code.
var laneTypes = [...]Type{laneInvoke: Invoke, laneOK: OK, laneFail: Fail, laneInfo: Info}

// laneFs are the functions a compact event names, by index.
var laneFs = [...]F{FRun, FSend, FPoll, FCommit, FAssign, FSubscribe, FSeek, FProcess, FCrash, FTxn, FFault, FMeta}

// Flags of a compact event.
const (
	laneTopic byte = 1 << iota
	laneKey
	laneValue
	laneError
	laneTxn
)

// laneType returns t's compact code, or false.
func laneType(t Type) (byte, bool) {
	for i, lt := range laneTypes {
		if lt == t {
			return byte(i), true
		}
	}
	return 0, false
}

// laneF returns f's compact index, or false.
func laneF(f F) (byte, bool) {
	for i, lf := range laneFs {
		if lf == f {
			return byte(i), true
		}
	}
	return 0, false
}

// laneEncoder is the writing side of a lane's compact form: the topic of the lane's last
// compact event, which the next one does not repeat, and the prefix cache of the events it
// keeps encoded (laneRaw).
type laneEncoder struct {
	topic  string
	prefix prefixCache
}

// append appends e in compact form, or its encoded tail after laneRaw when it has records,
// offsets, a nested object, or a type or function of its own. Only the tail's encoding can
// fail (a nested object encoding/json rejects); b is returned unchanged then.
func (c *laneEncoder) append(b []byte, e *Event) ([]byte, error) {
	typ, okT := laneType(e.Type)
	f, okF := laneF(e.F)
	if !okT || !okF || len(e.Records) > 0 || len(e.Offsets) > 0 || e.Txn != nil || e.Group != nil ||
		e.Fault != nil || e.ISR != nil || e.Run != nil {
		out, err := appendRest(c.prefix.append(append(b, laneRaw), e), e)
		if err != nil {
			return b, err
		}
		return out, nil
	}
	var flags byte
	if e.Topic != c.topic {
		flags |= laneTopic
	}
	if e.Key != "" {
		flags |= laneKey
	}
	if e.Value != "" {
		flags |= laneValue
	}
	if e.Error != "" {
		flags |= laneError
	}
	if e.TxnID != 0 {
		flags |= laneTxn
	}
	b = append(b, typ, f, flags)
	b = binary.AppendVarint(b, int64(e.Process))
	b = binary.AppendVarint(b, int64(e.Partition))
	b = binary.AppendVarint(b, e.Offset)
	if flags&laneTopic != 0 {
		c.topic = strings.Clone(e.Topic)
		b = appendLaneString(b, e.Topic)
	}
	if flags&laneKey != 0 {
		b = appendLaneString(b, e.Key)
	}
	if flags&laneValue != 0 {
		b = appendLaneString(b, e.Value)
	}
	if flags&laneError != 0 {
		b = appendLaneString(b, e.Error)
	}
	if flags&laneTxn != 0 {
		b = binary.AppendVarint(b, e.TxnID)
	}
	return b, nil
}

func appendLaneString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// laneDecoder is the flusher's side of a lane's compact form: the topic of the last compact
// event (laneEncoder) and the encoded prefix (appendPrefix) of the last compact event, with
// what it was encoded from: its type, function, process and topic (topicGen counts topic
// changes), compared as numbers.
type laneDecoder struct {
	topic    string
	topicGen uint64
	prefix   []byte
	key      prefixKey
	ev       Event
}

// prefixKey is what a compact event's prefix is made of.
type prefixKey struct {
	typ, f   byte
	process  int64
	topicGen uint64
}

// appendLine appends the tail of the event rec holds (one event of the lane's buffer, in
// lane order) to out: the line after its head. The strings of a decoded event alias rec
// only while it is formatted.
func (d *laneDecoder) appendLine(out, rec []byte) []byte {
	if rec[0] == laneRaw {
		return append(out, rec[1:]...)
	}
	e := &d.ev
	key := prefixKey{typ: rec[0], f: rec[1]}
	flags := rec[2]
	rec = rec[3:]
	var v int64
	key.process, rec = laneVarint(rec)
	v, rec = laneVarint(rec)
	e.Partition = int32(v)
	e.Offset, rec = laneVarint(rec)
	if flags&laneTopic != 0 {
		var s string
		s, rec = laneString(rec)
		d.topic = strings.Clone(s)
		d.topicGen++
	}
	key.topicGen = d.topicGen
	if flags&laneKey != 0 {
		e.Key, rec = laneString(rec)
	}
	if flags&laneValue != 0 {
		e.Value, rec = laneString(rec)
	}
	if flags&laneError != 0 {
		e.Error, rec = laneString(rec)
	}
	if flags&laneTxn != 0 {
		e.TxnID, _ = laneVarint(rec)
	}
	if key != d.key || d.prefix == nil {
		e.Process, e.Type, e.F, e.Topic = int(key.process), laneTypes[key.typ], laneFs[key.f], d.topic
		d.prefix, d.key = appendPrefix(d.prefix[:0], e), key
	}
	out, _ = appendRest(append(out, d.prefix...), e) // a compact event has no nested object
	e.Key, e.Value, e.Error, e.TxnID = "", "", "", 0
	return out
}

// laneVarint and laneString read what laneEncoder wrote; the lane's own bytes are never
// malformed.
func laneVarint(b []byte) (int64, []byte) {
	v, n := binary.Varint(b)
	return v, b[n:]
}

func laneString(b []byte) (string, []byte) {
	l, n := binary.Uvarint(b)
	b = b[n:]
	if l == 0 {
		return "", b
	}
	return unsafe.String(&b[0], int(l)), b[l:]
}
