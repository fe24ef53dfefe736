// Package proxy is a userspace TCP proxy for one directed link (client→broker 2, broker 1→
// broker 3 replication, ...), whose impairments the chaos controller switches at run time:
// cut (blackhole or reset), latency with jitter, loss, a bandwidth limit, lost answers, and,
// reading the Kafka frames that cross it (frames.go), corrupted record batches, duplicated
// and reordered produce requests and skewed client clocks.
//
// It is our own small proxy rather than Shopify's toxiproxy used as a library. Toxiproxy is
// per destination, runs its toxics per connection behind an HTTP API and a server package,
// and pulls in its own logging and metrics dependencies; what kchaos needs is narrower and
// different: one proxy per directed link, impairments keyed by the fault that set them (so two
// overlapping faults compose and each heal removes exactly its own), a cut that holds bytes
// like dropped packets and resumes the same connections on heal, a reset mode, and seeded
// randomness for jitter and loss so a run replays. That is a few hundred lines over net.
//
// TCP cannot lose packets, so Loss is modelled by its effect on a stream: a chunk of bytes
// that "loses a segment" is held back for one retransmission timeout (RTO, default 200ms,
// Linux's minimum) before it is delivered, in order. Connections are never dropped by Loss.
package proxy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// Impairment is what one fault does to a link. The zero value forwards untouched.
type Impairment struct {
	// Cut stops the link. Bytes stop flowing both ways and connections hang, as with dropped
	// packets (blackhole), until the cut is lifted; then they resume.
	Cut bool
	// Reset, with Cut, instead closes every connection and closes new ones at once.
	Reset bool
	// Latency delays every byte by this much; Jitter adds a uniform random [-Jitter, +Jitter].
	// Byte order is kept.
	Latency, Jitter time.Duration
	// Loss is the probability in [0,1] that a chunk read from one side is held back for RTO
	// (default 200ms) before delivery.
	Loss float64
	RTO  time.Duration
	// Bandwidth limits each direction of the link to this many bytes per second; 0 means no
	// limit.
	Bandwidth int64
	// DropResponses is the chance (0..1) that bytes coming back from the upstream are
	// dropped and the connection reset instead: the upstream has read and acted on the
	// request, the client never hears the answer (a lost acknowledgement).
	DropResponses float64
	// Corrupt is the chance (0..1) that a record batch in a produce request or a fetch
	// response gets one bit flipped inside the part its CRC32C covers; with CorruptAnywhere,
	// the chance that a chunk of bytes in either direction gets one bit flipped anywhere;
	// with CorruptProduceOnly, only the batches of produce requests (fetch responses pass
	// untouched, so consumers that do not check CRCs read clean data).
	Corrupt            float64
	CorruptAnywhere    bool
	CorruptProduceOnly bool
	// Duplicate is the chance (0..1) that a produce request is sent twice; the copy's answer
	// is swallowed.
	Duplicate float64
	// Reorder is the chance (0..1) that a produce request is held up to ReorderWindow
	// (default 20ms) and sent after the next request of its connection; answers still reach
	// the client in its order.
	Reorder       float64
	ReorderWindow time.Duration
	// ClockSkew moves the CreateTime of every produced record batch (its timestamps, with the
	// CRC recomputed): the clients' clocks as the broker sees them.
	ClockSkew time.Duration
}

// combine composes impairments set by overlapping faults: cut if any cuts, delays, loss,
// corruption and clock skews add up, the narrowest bandwidth and the highest duplicate and
// reorder chances win.
func combine(ims map[string]Impairment) Impairment {
	var out Impairment
	keep, keepBatch := 1.0, 1.0
	for _, im := range ims {
		out.Cut = out.Cut || im.Cut
		out.Reset = out.Reset || (im.Cut && im.Reset)
		out.Latency += im.Latency
		out.Jitter += im.Jitter
		keep *= 1 - im.Loss
		out.RTO = max(out.RTO, im.RTO)
		if im.Bandwidth > 0 && (out.Bandwidth == 0 || im.Bandwidth < out.Bandwidth) {
			out.Bandwidth = im.Bandwidth
		}
		out.DropResponses = max(out.DropResponses, im.DropResponses)
		keepBatch *= 1 - im.Corrupt
		out.CorruptAnywhere = out.CorruptAnywhere || (im.Corrupt > 0 && im.CorruptAnywhere)
		out.Duplicate = max(out.Duplicate, im.Duplicate)
		out.Reorder = max(out.Reorder, im.Reorder)
		out.ReorderWindow = max(out.ReorderWindow, im.ReorderWindow)
		out.ClockSkew += im.ClockSkew
	}
	out.Corrupt = 1 - keepBatch
	// Fetch responses are corrupted unless every corrupting impairment is produce-only.
	out.CorruptProduceOnly = out.Corrupt > 0
	for _, im := range ims {
		if im.Corrupt > 0 && !im.CorruptProduceOnly {
			out.CorruptProduceOnly = false
		}
	}
	if out.ReorderWindow == 0 {
		out.ReorderWindow = 20 * time.Millisecond
	}
	out.Loss = 1 - keep
	if out.RTO == 0 {
		out.RTO = 200 * time.Millisecond
	}
	return out
}

// Proxy accepts connections on its own loopback port and forwards each to the upstream
// address. Its methods are safe for concurrent use.
type Proxy struct {
	ln   net.Listener
	name string

	mu       sync.Mutex // guards everything below
	upstream string
	ims      map[string]Impairment
	eff      Impairment
	changed  chan struct{} // closed and replaced whenever eff changes
	conns    map[*link]struct{}
	rng      *rand.Rand
	nextFree [2]time.Time // bandwidth: when each direction may send again
	stats    Stats
	closed   bool

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// New listens on listen (e.g. "127.0.0.1:0") and forwards to upstream, which may be set
// later with SetUpstream. name labels errors; seed seeds jitter and loss.
func New(name, listen, upstream string, seed int64) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy: %s: %w", name, err)
	}
	p := &Proxy{ln: ln, name: name, upstream: upstream, ims: map[string]Impairment{}, changed: make(chan struct{}),
		conns: map[*link]struct{}{}, rng: rand.New(rand.NewPCG(uint64(seed), 0x70726f7879)), done: make(chan struct{})}
	p.eff = combine(nil)
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Name returns the label given to New.
func (p *Proxy) Name() string { return p.name }

// Addr returns the address clients of the link connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetUpstream changes where new connections go (a restarted broker on a new port).
func (p *Proxy) SetUpstream(addr string) {
	p.mu.Lock()
	p.upstream = addr
	p.mu.Unlock()
}

// Upstream returns where new connections go.
func (p *Proxy) Upstream() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upstream
}

// Set applies im under key, replacing what key set before; impairments of other keys stay.
func (p *Proxy) Set(key string, im Impairment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ims[key] = im
	p.updateLocked()
}

// Clear removes the impairment set under key; the link recovers when no other key impairs it.
func (p *Proxy) Clear(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.ims, key)
	p.updateLocked()
}

// ClearAll removes every impairment.
func (p *Proxy) ClearAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.ims)
	p.updateLocked()
}

// Impaired reports whether any impairment is set.
func (p *Proxy) Impaired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ims) > 0
}

// Stats counts what the Kafka-level impairments did.
type Stats struct {
	corrupted, duplicated, reordered int64
}

// Corrupted, Duplicated and Reordered return how many record batches (or, with
// CorruptAnywhere, chunks) were corrupted, produce requests duplicated and requests reordered.
func (s Stats) Corrupted() int64  { return s.corrupted }
func (s Stats) Duplicated() int64 { return s.duplicated }
func (s Stats) Reordered() int64  { return s.reordered }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Conns returns the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// updateLocked recomputes the effective impairment and wakes waiting pumps. p.mu must be held.
func (p *Proxy) updateLocked() {
	p.eff = combine(p.ims)
	close(p.changed)
	p.changed = make(chan struct{})
	if p.eff.Cut && p.eff.Reset {
		for l := range p.conns {
			l.close()
		}
	}
}

// state returns the effective impairment and a channel closed at its next change.
func (p *Proxy) state() (Impairment, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.eff, p.changed
}

// Close stops accepting, closes every connection and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	err := p.ln.Close()
	for l := range p.conns {
		l.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed || (p.eff.Cut && p.eff.Reset) {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up := p.upstream
		l := &link{p: p, down: c, sess: newSession()}
		p.conns[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run(up)
	}
}

// link is one proxied connection: down is the accepted side, up the dialled one.
type link struct {
	p        *Proxy
	down, up net.Conn
	sess     *session
	once     sync.Once
	mu       sync.Mutex // guards up and closed
	closed   bool
}

func (l *link) close() {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		up := l.up
		l.mu.Unlock()
		l.down.Close()
		if up != nil {
			up.Close()
		}
	})
}

// refuse resets the accepted connection when the upstream cannot be reached, so the client sees
// what a dead broker gives it (a connection reset, which clients retry) rather than an orderly
// close before the first response (which franz-go takes for a TLS mismatch and gives up on).
func (l *link) refuse() {
	if tc, ok := l.down.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

func (l *link) run(upstream string) {
	defer l.p.wg.Done()
	defer func() {
		l.close()
		l.p.mu.Lock()
		delete(l.p.conns, l)
		l.p.mu.Unlock()
	}()
	if upstream == "" {
		l.refuse()
		return
	}
	up, err := net.DialTimeout("tcp", upstream, 5*time.Second)
	if err != nil {
		l.refuse()
		return
	}
	l.mu.Lock()
	l.up = up
	closed := l.closed
	l.mu.Unlock()
	if closed {
		up.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.p.pump(l, l.down, up, 0) }()
	go func() { defer wg.Done(); l.p.pump(l, up, l.down, 1) }()
	wg.Wait()
}

type chunk struct {
	b     []byte
	due   time.Time
	eof   bool
	reset bool // the source failed (reset): reset the destination too
}

// chunkSize bounds one read; small enough that latency and bandwidth act smoothly.
const chunkSize = 16 << 10

// pump copies src to dst through the link's impairments: a reader stamps each chunk with its
// delivery time, a writer delivers in order when due, while not cut, within the bandwidth.
func (p *Proxy) pump(l *link, src, dst net.Conn, dir int) {
	q := make(chan chunk, 64)
	go func() {
		defer close(q)
		var last time.Time
		send := func(b []byte) bool {
			due := p.dueTime(time.Now())
			if due.Before(last) {
				due = last
			}
			last = due
			select {
			case q <- chunk{b: b, due: due}:
				return true
			case <-p.done:
				return false
			}
		}
		var fr framer
		var held *request
		for {
			b := make([]byte, chunkSize)
			if held != nil {
				src.SetReadDeadline(time.Now().Add(p.effective().ReorderWindow))
			}
			n, err := src.Read(b)
			if held != nil {
				src.SetReadDeadline(time.Time{})
			}
			var out [][]byte
			for _, pc := range fr.feed(b[:n], func() bool { return p.holdFrame(l, dir) }) {
				if !pc.frame {
					out = append(out, pc.b)
					continue
				}
				im := p.effective()
				if dir == 0 {
					var frames [][]byte
					frames, held = p.onRequest(l.sess, im, pc.b, held)
					out = append(out, frames...)
				} else {
					out = append(out, p.onResponse(l.sess, im, pc.b)...)
				}
			}
			if err != nil && held != nil {
				out = append(out, held.frame)
				held = nil
			}
			for _, o := range out {
				if !send(o) {
					return
				}
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if err != nil {
				// A reset (or any other failure) of one side reaches the other side as a
				// reset, not as an orderly close: a client that sees EOF mid-handshake may
				// give up where a reset makes it retry (franz-go does).
				select {
				case q <- chunk{eof: errors.Is(err, io.EOF), reset: !errors.Is(err, io.EOF)}:
				case <-p.done:
				}
				return
			}
		}
	}()
	defer func() {
		for range q {
		}
	}()
	for c := range q {
		if c.reset {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			l.close()
			return
		}
		if c.eof {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
				return
			}
			l.close()
			return
		}
		if !p.waitDeliverable(l, c.due) {
			l.close()
			return
		}
		p.corruptChunk(c.b)
		if dir == 1 && p.dropResponse() {
			l.refuse()
			l.close()
			return
		}
		for b := c.b; len(b) > 0; {
			n := p.sendable(len(b))
			if !p.waitBandwidth(dir, n) {
				l.close()
				return
			}
			if !p.waitDeliverable(l, time.Time{}) {
				l.close()
				return
			}
			if _, err := dst.Write(b[:n]); err != nil {
				l.close()
				return
			}
			b = b[n:]
		}
	}
	l.close()
}

// effective returns the impairment in force.
func (p *Proxy) effective() Impairment {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.eff
}

// holdFrame decides, at the start of a frame in direction dir, whether the link collects it
// whole: requests while a frame-level impairment is in force, answers while requests the
// link looked at are outstanding.
func (p *Proxy) holdFrame(l *link, dir int) bool {
	if dir == 0 {
		return p.effective().frameLevel()
	}
	return l.sess.tracking()
}

// corruptChunk flips a bit of b with the chance CorruptAnywhere gives.
func (p *Proxy) corruptChunk(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.eff.CorruptAnywhere && p.eff.Corrupt > 0 && p.rng.Float64() < p.eff.Corrupt {
		flipBit(p.rng, b, 0)
		p.stats.corrupted++
	}
}

// dropResponse decides whether an answer from the upstream is lost (DropResponses).
func (p *Proxy) dropResponse() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.eff.DropResponses > 0 && p.rng.Float64() < p.eff.DropResponses
}

// dueTime returns when a chunk read at now may be delivered: latency, jitter and loss.
func (p *Proxy) dueTime(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.eff
	d := e.Latency
	if e.Jitter > 0 {
		d += time.Duration(p.rng.Int64N(int64(2*e.Jitter)+1)) - e.Jitter
	}
	if e.Loss > 0 && p.rng.Float64() < e.Loss {
		d += e.RTO
	}
	return now.Add(max(d, 0))
}

// waitDeliverable waits until due has passed and the link is not cut. It returns false when
// the link or proxy closed, or the cut is a reset.
func (p *Proxy) waitDeliverable(l *link, due time.Time) bool {
	for {
		e, changed := p.state()
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if closed {
			return false
		}
		if e.Cut {
			if e.Reset {
				return false
			}
			select {
			case <-changed:
			case <-p.done:
				return false
			}
			continue
		}
		wait := time.Until(due)
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed:
		case <-p.done:
			t.Stop()
			return false
		}
		t.Stop()
	}
}

// sendable returns how many of n bytes to send in one write: about 20ms worth under a
// bandwidth limit (at least 512 bytes), else all.
func (p *Proxy) sendable(n int) int {
	p.mu.Lock()
	bw := p.eff.Bandwidth
	p.mu.Unlock()
	if bw <= 0 {
		return n
	}
	return min(n, max(512, int(bw/50)))
}

// waitBandwidth reserves n bytes of direction dir's bandwidth and waits for its turn.
func (p *Proxy) waitBandwidth(dir, n int) bool {
	p.mu.Lock()
	bw := p.eff.Bandwidth
	if bw <= 0 {
		p.mu.Unlock()
		return true
	}
	now := time.Now()
	start := p.nextFree[dir]
	if start.Before(now) {
		start = now
	}
	p.nextFree[dir] = start.Add(time.Duration(float64(n) / float64(bw) * float64(time.Second)))
	p.mu.Unlock()
	wait := time.Until(start)
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}
