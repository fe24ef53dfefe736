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
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. Requests are handled one at a time in arrival order, as
// Kafka does (it mutes a connection while a request is in flight), so responses are always in
// request order.
type conn struct {
	b        *Broker
	nc       net.Conn
	br       *bufio.Reader
	log      *slog.Logger
	clientID string
	// out is reused across responses to avoid an allocation per request.
	out []byte
	// parts holds zero-copy record data registered by the Fetch handler for the response
	// being written.
	parts []fetchPart
}

// request is a decoded request with its header.
type request struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
	msg           kmsg.Request
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

func (b *Broker) serveConn(nc net.Conn) {
	c := &conn{b: b, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), log: b.log.With("remote", nc.RemoteAddr().String())}
	b.metrics.connections.Inc()
	defer func() {
		c.releaseParts()
		b.metrics.connections.Dec()
		nc.Close()
		b.connMu.Lock()
		delete(b.conns, nc)
		b.connMu.Unlock()
		b.connWG.Done()
	}()
	for {
		err := c.serveOne()
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
			c.log.Info("closing connection", "client_id", c.clientID, "reason", err)
		}
		return
	}
}

// serveOne reads, handles and answers one request.
func (c *conn) serveOne() (err error) {
	var sizeBuf [4]byte
	if _, err := io.ReadFull(c.br, sizeBuf[:]); err != nil {
		return err
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	maxBytes := int32(c.b.cfg.propInt("socket.request.max.bytes"))
	if size < 0 || size > maxBytes {
		c.b.metrics.badRequests.WithLabelValues("frame_size").Inc()
		return fmt.Errorf("request size %d is outside [0, socket.request.max.bytes=%d]", size, maxBytes)
	}
	// The smallest header: api key, version, correlation id and a null client id.
	if size < 10 {
		c.b.metrics.badRequests.WithLabelValues("frame_size").Inc()
		return fmt.Errorf("request size %d is too small for a request header", size)
	}
	// Peek at the key before allocating the whole frame.
	head, err := c.br.Peek(2)
	if err != nil {
		return err
	}
	key := int16(binary.BigEndian.Uint16(head))
	if key != kmsg.Produce.Int16() && size > nonProduceMaxBytes {
		c.b.metrics.badRequests.WithLabelValues("frame_size").Inc()
		return fmt.Errorf("%s request of %d bytes is over the %d byte limit for non-produce requests", kmsg.NameForKey(key), size, nonProduceMaxBytes)
	}
	frame := make([]byte, size)
	if _, err := io.ReadFull(c.br, frame); err != nil {
		return err
	}
	start := time.Now()
	req, err := c.parse(frame)
	if err != nil {
		if errors.Is(err, errUnsupportedAPIVersions) {
			return c.answerUnsupportedAPIVersions(req)
		}
		c.b.metrics.badRequests.WithLabelValues("decode").Inc()
		return err
	}
	resp, err := c.handle(req)
	if err != nil {
		return err
	}
	if resp != nil {
		if err := c.writeResponse(req, resp); err != nil {
			return err
		}
	}
	c.b.metrics.observeRequest(req.key, time.Since(start))
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
	c.parts = c.parts[:0]
	return lookupAPI(req.key).handle(c, req)
}

// answerUnsupportedAPIVersions answers an ApiVersions request of a version we do not speak
// with UNSUPPORTED_VERSION and our version table in a v0 body, as Kafka does, so the client
// can retry with a version we support.
func (c *conn) answerUnsupportedAPIVersions(req *request) error {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = 35 // UNSUPPORTED_VERSION
	resp.ApiKeys = advertised
	return c.writeResponse(&request{key: req.key, version: 0, correlationID: req.correlationID}, resp)
}

// writeResponse frames and writes one response: size, correlation id, tagged fields for
// flexible responses other than ApiVersions (response header v1), the body. Record data the
// Fetch handler registered is sent from the segment files without copying.
func (c *conn) writeResponse(req *request, resp kmsg.Response) error {
	resp.SetVersion(req.version)
	out := c.out[:0]
	out = append(out, 0, 0, 0, 0) // size, filled below
	out = kbin.AppendInt32(out, req.correlationID)
	if resp.IsFlexible() && req.key != kmsg.ApiVersions.Int16() {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	c.out = out[:0]
	if err := c.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if len(c.parts) == 0 {
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		_, err := c.nc.Write(out)
		c.b.metrics.bytesOutTotal.Add(float64(len(out)))
		return err
	}
	return c.writeSpliced(out, resp.IsFlexible())
}

// writeTimeout bounds writing one response to a client that stopped reading; default 30s.
const writeTimeout = 30 * time.Second
