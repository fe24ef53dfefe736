package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// peerResponseMax bounds a response from another broker (a replica fetch is at most
// replica.fetch.response.max.bytes, 10 MiB by default, plus framing).
const peerResponseMax = 64 << 20

// peerDialTimeout bounds connecting to another broker.
const peerDialTimeout = 3 * time.Second

// peerClient is one connection from this broker to another broker's Kafka listener, for
// inter-broker requests (replica fetches, controller requests). It speaks the Kafka protocol
// with kmsg's codecs, one request at a time, and redials after any error. The address is
// resolved at each dial (the peer map, then the metadata image), so a broker that moved or a
// link routed through a proxy is picked up. Safe for concurrent use; requests serialise.
type peerClient struct {
	id       int32 // the peer's node id
	resolve  func(id int32) (string, error)
	clientID string
	// dial opens the connection to addr; nil is a plain TCP dial. Controller channels dial
	// the peer's controller listener with controller.DialAPI.
	dial func(ctx context.Context, addr string) (net.Conn, error)

	mu   sync.Mutex
	nc   net.Conn
	br   *bufio.Reader
	corr int32
	fmt  *kmsg.RequestFormatter
	buf  []byte
}

func newPeerClient(self, peer int32, resolve func(int32) (string, error)) *peerClient {
	id := fmt.Sprintf("kchaos-broker-%d", self)
	return &peerClient{id: peer, resolve: resolve, clientID: id, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(id))}
}

// errPeerClosed is returned by requests on a closed peer client.
var errPeerClosed = errors.New("broker: peer client closed")

// Request sends req at its set version and returns the decoded response. The exchange must
// finish within ctx's deadline, or wait (if ctx has none) plus peerDialTimeout.
func (pc *peerClient) Request(ctx context.Context, req kmsg.Request, wait time.Duration) (kmsg.Response, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.corr < 0 {
		return nil, errPeerClosed
	}
	if pc.nc == nil {
		addr, err := pc.resolve(pc.id)
		if err != nil {
			return nil, err
		}
		dctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
		var nc net.Conn
		if pc.dial != nil {
			nc, err = pc.dial(dctx, addr)
		} else {
			var d net.Dialer
			nc, err = d.DialContext(dctx, "tcp", addr)
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("broker: dial broker %d at %s: %w", pc.id, addr, err)
		}
		pc.nc, pc.br = nc, bufio.NewReaderSize(nc, 64<<10)
	}
	resp, err := pc.exchange(ctx, req, wait)
	if err != nil {
		pc.nc.Close()
		pc.nc, pc.br = nil, nil
		return nil, fmt.Errorf("broker: %s to broker %d: %w", kmsg.NameForKey(req.Key()), pc.id, err)
	}
	return resp, nil
}

func (pc *peerClient) exchange(ctx context.Context, req kmsg.Request, wait time.Duration) (kmsg.Response, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(wait + peerDialTimeout)
	}
	nc := pc.nc // the callback may run after Request has dropped a failed connection
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	pc.corr++
	pc.buf = pc.fmt.AppendRequest(pc.buf[:0], req, pc.corr)
	if _, err := pc.nc.Write(pc.buf); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(pc.br, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > peerResponseMax {
		return nil, fmt.Errorf("response size %d out of range", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(pc.br, body); err != nil {
		return nil, err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != pc.corr {
		return nil, fmt.Errorf("correlation id %d, want %d", corr, pc.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		r := kbin.Reader{Src: body}
		for tags := r.Uvarint(); tags > 0 && r.Ok(); tags-- {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
		if !r.Ok() {
			return nil, errors.New("truncated response header")
		}
		body = r.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return resp, nil
}

// Close closes the connection; later requests fail.
func (pc *peerClient) Close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.nc != nil {
		pc.nc.Close()
		pc.nc = nil
	}
	pc.corr = -1
}
