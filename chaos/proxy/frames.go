package proxy

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka-level impairments. A link follows the Kafka framing of both directions of each
// connection (a 4-byte size, then that many bytes) for as long as it makes sense: a stream
// that does not start like a Kafka frame (TLS starts with 0x16) or declares an absurd size is
// passed through untouched from then on. Only while a frame-level impairment is in force, or
// while answers to requests it touched are outstanding, does the link hold whole frames in
// memory; otherwise bytes stream through as before.

// maxFrame is the largest frame the link follows (256MiB); a larger size means the stream is
// not Kafka (a TLS record header read as a size is 0x16...: over 369MB).
const maxFrame = 1 << 28

// Offsets in a v2 record batch.
const (
	batchLengthAt    = 8
	batchMagicAt     = 16
	batchCRCAt       = 17
	batchAttrsAt     = 21
	batchFirstTsAt   = 27
	batchMaxTsAt     = 35
	batchHeaderBytes = 61
	attrLogAppend    = 1 << 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// piece is what a framer hands on: bytes to pass through, or a whole frame to look at.
type piece struct {
	b     []byte
	frame bool
}

// framer splits one direction's byte stream into frames. Whether a frame is collected whole
// is decided at its first byte; a streamed frame's bytes, its size included, go on at once.
type framer struct {
	hdr     [4]byte
	nhdr    int
	holding bool   // the current frame is collected whole
	left    int64  // bytes of the current (streamed) frame still to pass through
	buf     []byte // the frame being collected whole (size included)
	want    int
	broken  bool
}

// feed splits b. At each frame's start hold says whether to collect the frame whole.
func (f *framer) feed(b []byte, hold func() bool) []piece {
	var out []piece
	for len(b) > 0 {
		switch {
		case f.broken:
			return append(out, piece{b: b})
		case f.buf != nil:
			n := min(len(b), f.want-len(f.buf))
			f.buf = append(f.buf, b[:n]...)
			b = b[n:]
			if len(f.buf) == f.want {
				out = append(out, piece{b: f.buf, frame: true})
				f.buf = nil
			}
		case f.left > 0:
			n := int(min(int64(len(b)), f.left))
			out = append(out, piece{b: b[:n]})
			f.left -= int64(n)
			b = b[n:]
		default:
			if f.nhdr == 0 {
				f.holding = hold()
			}
			n := min(len(b), 4-f.nhdr)
			copy(f.hdr[f.nhdr:], b[:n])
			if !f.holding {
				out = append(out, piece{b: b[:n]})
			}
			f.nhdr += n
			b = b[n:]
			if f.nhdr < 4 {
				continue
			}
			f.nhdr = 0
			size := int32(binary.BigEndian.Uint32(f.hdr[:]))
			switch {
			case size < 0 || size > maxFrame:
				f.broken = true
				if f.holding {
					out = append(out, piece{b: append([]byte(nil), f.hdr[:]...)})
				}
			case !f.holding:
				f.left = int64(size)
			case size == 0:
				out = append(out, piece{b: append([]byte(nil), f.hdr[:]...), frame: true})
			default:
				f.want = 4 + int(size)
				f.buf = append(make([]byte, 0, f.want), f.hdr[:]...)
			}
		}
	}
	return out
}

// reqInfo is what a link remembers of a request it looked at until its answer comes back.
type reqInfo struct {
	key, version int16
	// drop: the answer belongs to a copy the link sent (Duplicate) and is swallowed.
	drop bool
	// after, when set, is the request whose answer must reach the client first (Reorder).
	after    int32
	hasAfter bool
}

// session is the Kafka-level state of one proxied connection, shared by its two pumps.
type session struct {
	mu       sync.Mutex // guards everything below
	inflight map[int32]reqInfo
	held     map[int32][]byte // answers waiting for the answer to the request they name
	nextCopy int32            // correlation id of the next copy (negative, so never a client's)
}

func newSession() *session {
	return &session{inflight: map[int32]reqInfo{}, held: map[int32][]byte{}, nextCopy: -1}
}

// tracking reports whether answers are outstanding that the link must look at.
func (s *session) tracking() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight) > 0
}

// frameLevel reports whether im needs request frames whole.
func (im Impairment) frameLevel() bool {
	return (im.Corrupt > 0 && !im.CorruptAnywhere) || im.Duplicate > 0 || im.Reorder > 0 || im.ClockSkew != 0
}

// request is one request frame as the link saw it.
type request struct {
	frame        []byte
	key, version int16
	corr         int32
	acks         int16 // produce only; -1 otherwise
	ok           bool  // the header parsed
}

// parseRequest reads a request frame's header and, for Produce, its body, whose record batch
// slices point into frame.
func parseRequest(frame []byte) (request, *kmsg.ProduceRequest) {
	rq := request{frame: frame, acks: -1}
	if len(frame) < 12 {
		return rq, nil
	}
	r := kbin.Reader{Src: frame[4:]}
	rq.key, rq.version, rq.corr = r.Int16(), r.Int16(), r.Int32()
	r.NullableString()
	kr := kmsg.RequestForKey(rq.key)
	if kr == nil {
		return rq, nil
	}
	kr.SetVersion(rq.version)
	if kr.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if r.Complete() != nil {
		return rq, nil
	}
	rq.ok = true
	if rq.key != 0 {
		return rq, nil
	}
	pr := kr.(*kmsg.ProduceRequest)
	if err := pr.ReadFrom(r.Src); err != nil {
		rq.ok = false
		return rq, nil
	}
	rq.acks = pr.Acks
	return rq, pr
}

// withCorrelation returns a copy of a request frame with another correlation id.
func withCorrelation(frame []byte, corr int32) []byte {
	c := append([]byte(nil), frame...)
	binary.BigEndian.PutUint32(c[8:], uint32(corr))
	return c
}

// eachBatch calls fn for every whole v2 record batch in records.
func eachBatch(records []byte, fn func(batch []byte)) {
	for len(records) >= batchHeaderBytes {
		size := 12 + int64(int32(binary.BigEndian.Uint32(records[batchLengthAt:])))
		if size < batchHeaderBytes || size > int64(len(records)) {
			return
		}
		if records[batchMagicAt] == 2 {
			fn(records[:size])
		}
		records = records[size:]
	}
}

// skewBatch moves a CreateTime batch's timestamps by skew milliseconds and recomputes its CRC.
func skewBatch(b []byte, skewMs int64) {
	if binary.BigEndian.Uint16(b[batchAttrsAt:])&attrLogAppend != 0 {
		return
	}
	for _, at := range []int{batchFirstTsAt, batchMaxTsAt} {
		ts := int64(binary.BigEndian.Uint64(b[at:]))
		binary.BigEndian.PutUint64(b[at:], uint64(ts+skewMs))
	}
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttrsAt:], castagnoli))
}

// flipBit flips one random bit of b[from:].
func flipBit(rng *rand.Rand, b []byte, from int) {
	if len(b) <= from {
		return
	}
	i := from + rng.IntN(len(b)-from)
	b[i] ^= 1 << rng.IntN(8)
}

// corruptBatches flips one bit inside the CRC-covered part of each batch of records with
// chance rate, and returns how many it flipped.
func corruptBatches(rng *rand.Rand, records []byte, rate float64) int {
	n := 0
	eachBatch(records, func(b []byte) {
		if rng.Float64() < rate {
			flipBit(rng, b, batchAttrsAt)
			n++
		}
	})
	return n
}

// onRequest applies the frame-level impairment im to one whole request frame and returns the
// frames to send in its place, in order. held is a request the link holds back for Reorder
// (nil when none); onRequest returns the request to hold next, if any.
func (p *Proxy) onRequest(s *session, im Impairment, frame []byte, held *request) (out [][]byte, hold *request) {
	rq, pr := parseRequest(frame)
	expectsAnswer := rq.ok && !(rq.key == 0 && rq.acks == 0)
	if pr != nil {
		p.mu.Lock()
		for _, t := range pr.Topics {
			for _, part := range t.Partitions {
				if im.ClockSkew != 0 {
					eachBatch(part.Records, func(b []byte) { skewBatch(b, im.ClockSkew.Milliseconds()) })
				}
				if im.Corrupt > 0 && !im.CorruptAnywhere {
					p.stats.corrupted += int64(corruptBatches(p.rng, part.Records, im.Corrupt))
				}
			}
		}
		dup := im.Duplicate > 0 && p.rng.Float64() < im.Duplicate
		reorder := held == nil && expectsAnswer && im.Reorder > 0 && p.rng.Float64() < im.Reorder
		p.mu.Unlock()
		s.mu.Lock()
		if expectsAnswer {
			s.inflight[rq.corr] = reqInfo{key: rq.key, version: rq.version}
		}
		if reorder {
			s.mu.Unlock()
			return nil, &rq
		}
		out = append(out, frame)
		if dup {
			c := s.nextCopy
			s.nextCopy--
			if expectsAnswer {
				s.inflight[c] = reqInfo{key: rq.key, version: rq.version, drop: true}
			}
			out = append(out, withCorrelation(frame, c))
			p.mu.Lock()
			p.stats.duplicated++
			p.mu.Unlock()
		}
		s.mu.Unlock()
	} else {
		if expectsAnswer && (im.Corrupt > 0 || held != nil) {
			s.mu.Lock()
			s.inflight[rq.corr] = reqInfo{key: rq.key, version: rq.version}
			s.mu.Unlock()
		}
		out = append(out, frame)
	}
	if held != nil {
		// The held request goes after this one; this one's answer waits for the held one's.
		s.mu.Lock()
		if info, ok := s.inflight[rq.corr]; ok && expectsAnswer {
			info.after, info.hasAfter = held.corr, true
			s.inflight[rq.corr] = info
		}
		s.mu.Unlock()
		out = append(out, held.frame)
		p.mu.Lock()
		p.stats.reordered++
		p.mu.Unlock()
	}
	return out, nil
}

// onResponse applies the link's Kafka-level state to one whole response frame and returns the
// frames to deliver to the client now, in order.
func (p *Proxy) onResponse(s *session, im Impairment, frame []byte) [][]byte {
	if len(frame) < 8 {
		return [][]byte{frame}
	}
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	s.mu.Lock()
	info, ok := s.inflight[corr]
	delete(s.inflight, corr)
	s.mu.Unlock()
	if !ok {
		return [][]byte{frame}
	}
	if info.drop {
		return nil
	}
	if info.key == 1 && im.Corrupt > 0 && !im.CorruptAnywhere && !im.CorruptProduceOnly {
		p.corruptFetch(frame, info.version, im.Corrupt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if info.hasAfter {
		if _, waiting := s.inflight[info.after]; waiting {
			s.held[info.after] = frame
			return nil
		}
	}
	out := [][]byte{frame}
	if next, ok := s.held[corr]; ok {
		delete(s.held, corr)
		out = append(out, next)
	}
	return out
}

// corruptFetch flips bits in the record batches of a fetch response frame.
func (p *Proxy) corruptFetch(frame []byte, version int16, rate float64) {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	r := kbin.Reader{Src: frame[8:]}
	if resp.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if r.Complete() != nil || resp.ReadFrom(r.Src) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range resp.Topics {
		for _, part := range t.Partitions {
			p.stats.corrupted += int64(corruptBatches(p.rng, part.RecordBatches, rate))
		}
	}
}
