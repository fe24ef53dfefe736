package controller

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The controller listener carries two protocols on one port, as KRaft's controller listener
// carries both the quorum's own traffic and the brokers' controller requests: hashicorp/raft's
// transport, and Kafka-protocol controller requests (BrokerRegistration, BrokerHeartbeat,
// AlterPartition, forwarded admin requests). A Kafka-protocol connection starts with APIPreamble;
// a Raft connection starts with a one-byte RPC type (0-4), so the first byte tells them apart.
// Keeping controller requests off the client listener means they never queue behind produce
// and fetch traffic, and a chaos fault that cuts a broker from the quorum cuts its heartbeats
// too, as in KRaft.

// APIPreamble is written by a broker at the start of a Kafka-protocol connection to another
// node's controller listener.
var APIPreamble = []byte("KCTL")

// sniffTimeout bounds how long an accepted connection may take to send its first bytes.
const sniffTimeout = 10 * time.Second

// DialAPI opens a Kafka-protocol connection to the controller listener at addr with dial (a
// plain TCP dial when nil) and writes APIPreamble.
func DialAPI(ctx context.Context, dial func(ctx context.Context, addr string) (net.Conn, error), addr string) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	nc, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetWriteDeadline(dl)
	}
	if _, err := nc.Write(APIPreamble); err != nil {
		nc.Close()
		return nil, fmt.Errorf("controller: write preamble to %s: %w", addr, err)
	}
	nc.SetWriteDeadline(time.Time{})
	return nc, nil
}

// muxListener accepts on the controller listener and sorts connections by their first bytes:
// Raft connections are returned by Accept (to the Raft transport), Kafka-protocol ones are
// handed to serveAPI (closed when it is nil).
type muxListener struct {
	ln       net.Listener
	serveAPI func(net.Conn)
	raft     chan net.Conn
	closed   chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

func newMuxListener(ln net.Listener, serveAPI func(net.Conn)) *muxListener {
	m := &muxListener{ln: ln, serveAPI: serveAPI, raft: make(chan net.Conn), closed: make(chan struct{})}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

func (m *muxListener) acceptLoop() {
	defer m.wg.Done()
	for {
		nc, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go m.sort(nc)
	}
}

// sort reads a connection's first byte and routes it.
func (m *muxListener) sort(nc net.Conn) {
	nc.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(nc, 4096)
	first, err := br.Peek(1)
	if err != nil {
		nc.Close()
		return
	}
	if first[0] == APIPreamble[0] {
		var pre [4]byte
		if _, err := io.ReadFull(br, pre[:len(APIPreamble)]); err != nil || string(pre[:len(APIPreamble)]) != string(APIPreamble) || m.serveAPI == nil {
			nc.Close()
			return
		}
		nc.SetReadDeadline(time.Time{})
		m.serveAPI(&bufferedConn{Conn: nc, r: br})
		return
	}
	nc.SetReadDeadline(time.Time{})
	select {
	case m.raft <- &bufferedConn{Conn: nc, r: br}:
	case <-m.closed:
		nc.Close()
	}
}

// Accept returns the next Raft connection.
func (m *muxListener) Accept() (net.Conn, error) {
	select {
	case nc := <-m.raft:
		return nc, nil
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out stay open.
func (m *muxListener) Close() error {
	var err error
	m.once.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	m.wg.Wait()
	return err
}

// Addr is the listener's local address.
func (m *muxListener) Addr() net.Addr { return m.ln.Addr() }

// bufferedConn is a connection whose first bytes were read ahead into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}
