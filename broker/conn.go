package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. Requests are handled one at a time in arrival order, as
// Kafka does: the connection is muted while a request is handled — the next frame is read only
// once the handler has finished (for acks=0 produce, once the batch is appended; otherwise once
// the response is queued for the writer) — so a client that sends faster than the broker
// handles is slowed by TCP, never queued in the broker's memory. Writing earlier responses
// overlaps with handling: a writer goroutine sends encoded responses in order.
type conn struct {
	b        *Broker
	nc       net.Conn
	br       *bufio.Reader
	log      *slog.Logger
	clientID string
	// controllerPlane is set on connections to the controller listener, which serve only the
	// APIs brokers send to the controller (api.onControllerListener).
	controllerPlane bool
	// parts holds zero-copy record data registered by the Fetch handler for the response
	// being built; it moves to the outgoing frame when the response is encoded.
	parts []fetchPart
}

// request is a decoded request with its header.
type request struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
	msg           kmsg.Request
	// frame is the pooled buffer the request was decoded from (records alias it).
	frame *[]byte
	// pooled is how many bytes of the broker's request memory pool the frame holds.
	pooled int64
	// unsupportedAPIVersions marks an ApiVersions request of a version we do not speak.
	unsupportedAPIVersions bool
	start                  time.Time
}

// outFrame is an encoded response waiting for the writer.
type outFrame struct {
	buf      *[]byte // size hole, header and body
	parts    []fetchPart
	flexible bool
}

// errCloseConn tells the connection loop to close the connection without a response, which is
// how Kafka answers malformed requests and unsupported versions of APIs other than
// ApiVersions.
var errCloseConn = errors.New("broker: close connection")

// nonProduceMaxBytes bounds frames of every API but Produce. kmsg allocates decoded arrays
// up front (bounded by the bytes left), so a 100 MiB frame of tiny array elements could expand
// many-fold; no legitimate non-produce request comes close to this. Kafka has only
// socket.request.max.bytes.
const nonProduceMaxBytes = 8 << 20

// pipelineDepth is how many encoded responses may wait for the writer per connection.
const pipelineDepth = 8

// bufPool recycles frame and response buffers of up to pooledBufMax bytes.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const pooledBufMax = 1 << 20

func getBuf(n int) *[]byte {
	if n > pooledBufMax {
		b := make([]byte, n)
		return &b
	}
	b := bufPool.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return b
}

func putBuf(b *[]byte) {
	if b != nil && cap(*b) <= pooledBufMax {
		bufPool.Put(b)
	}
}

// serveControllerConn serves a Kafka-protocol connection from another broker to this node's
// controller listener (see controller.DialAPI).
func (b *Broker) serveControllerConn(nc net.Conn) {
	select {
	case <-b.cl.ctlReady:
	case <-b.stop:
		nc.Close()
		return
	}
	b.connMu.Lock()
	select {
	case <-b.stop:
		b.connMu.Unlock()
		nc.Close()
		return
	default:
	}
	b.conns[nc] = struct{}{}
	b.connWG.Add(1)
	b.connMu.Unlock()
	b.serveConn(nc, true)
}

func (b *Broker) serveConn(nc net.Conn, controllerPlane bool) {
	c := &conn{b: b, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), log: b.log.With("remote", nc.RemoteAddr().String()), controllerPlane: controllerPlane}
	b.metrics.connections.Inc()
	out := make(chan outFrame, pipelineDepth)
	var writeErr error
	writerDone := make(chan struct{})
	go func() { // writer
		defer close(writerDone)
		for f := range out {
			if writeErr == nil {
				writeErr = c.writeFrame(f)
				if writeErr != nil {
					nc.Close() // unblock the reader
				}
			} else {
				releaseParts(f.parts)
			}
			putBuf(f.buf)
		}
	}()
	var readErr, handleErr error
	for {
		req, err := c.readRequest()
		if err != nil {
			readErr = err
			break
		}
		handleErr = c.serveRequest(req, out)
		c.releaseFrame(req)
		if handleErr != nil {
			break
		}
	}
	close(out)
	<-writerDone // the writer finishes queued responses before the connection closes
	nc.Close()
	c.releaseParts()
	b.metrics.connections.Dec()
	b.connMu.Lock()
	delete(b.conns, nc)
	b.connMu.Unlock()
	b.connWG.Done()
	for _, err := range []error{handleErr, writeErr, readErr} {
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
				c.log.Info("closing connection", "client_id", c.clientID, "reason", err)
			}
			break
		}
	}
}

// readRequest reads and parses one frame.
func (c *conn) readRequest() (*request, error) {
	var sizeBuf [4]byte
	if _, err := io.ReadFull(c.br, sizeBuf[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	maxBytes := int32(c.b.cfg.propInt("socket.request.max.bytes"))
	if size < 0 || size > maxBytes {
		c.b.metrics.badRequests.WithLabelValues("frame_size").Inc()
		return nil, fmt.Errorf("request size %d is outside [0, socket.request.max.bytes=%d]", size, maxBytes)
	}
	// The smallest header: api key, version, correlation id and a null client id.
	if size < 10 {
		c.b.metrics.badRequests.WithLabelValues("frame_size").Inc()
		return nil, fmt.Errorf("request size %d is too small for a request header", size)
	}
	// Peek at the key before allocating the whole frame.
	head, err := c.br.Peek(2)
	if err != nil {
		return nil, err
	}
	key := int16(binary.BigEndian.Uint16(head))
	if key != kmsg.Produce.Int16() && size > nonProduceMaxBytes {
		c.b.metrics.badRequests.WithLabelValues("frame_size").Inc()
		return nil, fmt.Errorf("%s request of %d bytes is over the %d byte limit for non-produce requests", kmsg.NameForKey(key), size, nonProduceMaxBytes)
	}
	pooled := int64(0)
	if key == kmsg.Produce.Int16() {
		if pooled, err = c.b.requestMem.acquire(int64(size), c.b.stop); err != nil {
			return nil, err
		}
	}
	frame := getBuf(int(size))
	if _, err := io.ReadFull(c.br, *frame); err != nil {
		putBuf(frame)
		c.b.requestMem.release(pooled)
		return nil, err
	}
	start := time.Now()
	req, err := c.parse(*frame)
	if err != nil {
		if !errors.Is(err, errUnsupportedAPIVersions) {
			putBuf(frame)
			c.b.requestMem.release(pooled)
			c.b.metrics.badRequests.WithLabelValues("decode").Inc()
			return nil, err
		}
		req.unsupportedAPIVersions = true
	}
	req.frame = frame
	req.pooled = pooled
	req.start = start
	return req, nil
}

// releaseFrame returns a handled request's frame to the buffer pool and its bytes to the
// broker's request memory pool.
func (c *conn) releaseFrame(req *request) {
	putBuf(req.frame)
	c.b.requestMem.release(req.pooled)
}

// serveRequest handles one request and queues its response.
func (c *conn) serveRequest(req *request, out chan<- outFrame) error {
	if req.unsupportedAPIVersions {
		out <- c.encode(&request{key: req.key, version: 0, correlationID: req.correlationID}, unsupportedAPIVersionsResponse())
		return nil
	}
	resp, err := c.handle(req)
	if err != nil {
		return err
	}
	// Counted before the response leaves, so a client that has its answer sees it counted.
	c.b.metrics.observeRequest(req.key, time.Since(req.start))
	if resp != nil {
		out <- c.encode(req, resp)
	}
	return nil
}

var errUnsupportedAPIVersions = errors.New("broker: unsupported ApiVersions version")

// parse decodes the header and body of one frame. It checks the API key and version against
// the advertised table before decoding the body.
func (c *conn) parse(frame []byte) (*request, error) {
	r := kbin.Reader{Src: frame}
	req := &request{key: r.Int16(), version: r.Int16(), correlationID: r.Int32()}
	if cid := r.NullableString(); cid != nil {
		req.clientID = *cid
	}
	if !r.Ok() {
		return nil, errors.New("truncated request header")
	}
	c.clientID = req.clientID
	a := lookupAPI(req.key)
	if a == nil {
		return nil, fmt.Errorf("unsupported api key %d (%s)", req.key, kmsg.NameForKey(req.key))
	}
	if c.controllerPlane && !a.onControllerListener() {
		return nil, fmt.Errorf("%s is not served on the controller listener", kmsg.NameForKey(req.key))
	}
	if !c.controllerPlane && a.internal {
		return nil, fmt.Errorf("%s is served on the controller listener only", kmsg.NameForKey(req.key))
	}
	msg := kmsg.RequestForKey(req.key)
	if msg == nil {
		return nil, fmt.Errorf("unknown api key %d", req.key)
	}
	if req.version < a.min || req.version > a.max {
		if req.key == kmsg.ApiVersions.Int16() {
			return req, errUnsupportedAPIVersions
		}
		return nil, fmt.Errorf("%s version %d is outside the advertised range [%d, %d]", kmsg.NameForKey(req.key), req.version, a.min, a.max)
	}
	msg.SetVersion(req.version)
	// Flexible requests have header v2 with tagged fields (only ApiVersions' response header
	// stays at v0).
	if msg.IsFlexible() {
		skipTags(&r)
		if !r.Ok() {
			return nil, errors.New("truncated request header tags")
		}
		if err := checkFlexible(req.key, req.version, r.Src); err != nil {
			return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
		}
	}
	if err := msg.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
	}
	req.msg = msg
	return req, nil
}

// skipTags skips a tagged-field section, failing the reader when the section claims more
// fields than there are bytes left, as Kafka's parser does when its buffer runs out.
// kmsg.SkipTags instead loops as many times as the claimed count, up to 2^32, so a 20-byte
// frame could hold a connection's goroutine on a CPU for many seconds.
func skipTags(r *kbin.Reader) {
	n := r.Uvarint()
	if int64(n) > int64(len(r.Src)) {
		r.Span(len(r.Src) + 1) // marks the reader failed
		return
	}
	for ; n > 0 && r.Ok(); n-- {
		r.Uvarint() // tag
		r.Span(int(r.Uvarint()))
	}
}

// handle runs the API's handler, turning a panic into a closed connection (logged with its
// stack) so one bad request never takes the broker down.
func (c *conn) handle(req *request) (resp kmsg.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.b.metrics.badRequests.WithLabelValues("panic").Inc()
			c.log.Error("handler panic", "api", kmsg.NameForKey(req.key), "version", req.version, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("handler panic: %v", r)
		}
	}()
	c.releaseParts()
	a := lookupAPI(req.key)
	if !c.controllerPlane && req.key != kmsg.ApiVersions.Int16() && !c.b.cl.waitCaughtUp() {
		return nil, errCloseConn
	}
	return a.handle(c, req)
}

// unsupportedAPIVersionsResponse answers an ApiVersions request of a version we do not speak:
// UNSUPPORTED_VERSION and our version table in a v0 body, as Kafka does, so the client can
// retry with a version we support.
func unsupportedAPIVersionsResponse() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = 35 // UNSUPPORTED_VERSION
	resp.ApiKeys = advertised
	return resp
}

// encode frames one response: a size hole, the correlation id, tagged fields for flexible
// responses other than ApiVersions (response header v1), the body. Record data registered by
// the Fetch handler travels with the frame for the writer to splice in.
func (c *conn) encode(req *request, resp kmsg.Response) outFrame {
	resp.SetVersion(req.version)
	buf := getBuf(0)
	out := append((*buf)[:0], 0, 0, 0, 0)
	out = kbin.AppendInt32(out, req.correlationID)
	if resp.IsFlexible() && req.key != kmsg.ApiVersions.Int16() {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	*buf = out
	f := outFrame{buf: buf, flexible: resp.IsFlexible()}
	if len(c.parts) > 0 {
		f.parts = c.parts
		c.parts = nil
	}
	return f
}

// writeFrame writes one encoded response, splicing in record data from segment files.
func (c *conn) writeFrame(f outFrame) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		releaseParts(f.parts)
		return err
	}
	out := *f.buf
	if len(f.parts) == 0 {
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		_, err := c.nc.Write(out)
		c.b.metrics.bytesOutTotal.Add(float64(len(out)))
		return err
	}
	return c.writeSpliced(out, f.parts, f.flexible)
}

// writeTimeout bounds writing one response to a client that stopped reading; default 30s.
const writeTimeout = 30 * time.Second
