package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/twmb/franz-go/pkg/kbin"
	"golang.org/x/sys/unix"

	"github.com/kchaos/kchaos/broker/storage"
)

// Zero-copy fetch responses. The Fetch handler does not read record data into memory: it
// registers each partition's storage.ReadResult with the connection and puts a 16-byte
// placeholder in the response's RecordBatches field. The response is encoded by kmsg as usual;
// writeSpliced then finds each placeholder, rewrites the length prefix in front of it to the
// real length, and writes the encoded bytes around it with writev while the record data goes
// from the segment files to the socket with sendfile(2) at explicit offsets (no shared file
// position, so concurrent fetches of one segment are safe).

const markerLen = 16

// fetchPart is one partition's record data awaiting the splice.
type fetchPart struct {
	marker [markerLen]byte
	res    *storage.ReadResult
}

// zeroCopy turns the splice off (the copy path through ReadAt is used); for measurement.
var zeroCopy = true

// addRecords registers res for the response being built and returns the placeholder to put in
// RecordBatches. Empty results need no placeholder: the caller leaves RecordBatches empty.
func (c *conn) addRecords(res *storage.ReadResult) []byte {
	var p fetchPart
	if _, err := rand.Read(p.marker[:8]); err != nil {
		panic(fmt.Sprintf("broker: crypto/rand: %v", err))
	}
	binary.BigEndian.PutUint64(p.marker[8:], uint64(len(c.parts)))
	p.res = res
	c.parts = append(c.parts, p)
	return p.marker[:]
}

// releaseParts releases every read result registered for the response being built.
func (c *conn) releaseParts() {
	releaseParts(c.parts)
	c.parts = c.parts[:0]
}

func releaseParts(parts []fetchPart) {
	for _, p := range parts {
		p.res.Release()
	}
}

// writeSpliced writes an encoded response (starting with a 4-byte size hole) whose record
// placeholders must be replaced by the registered record data.
func (c *conn) writeSpliced(out []byte, parts []fetchPart, flexible bool) error {
	defer releaseParts(parts)
	type piece struct {
		bytes []byte
		res   *storage.ReadResult
	}
	pieces := make([]piece, 0, 3*len(parts)+1)
	total := int64(len(out) - 4)
	prev := 0
	for _, p := range parts {
		m := bytes.Index(out[prev:], p.marker[:])
		if m < 0 {
			return errors.New("broker: fetch placeholder missing from encoded response")
		}
		m += prev
		// The length prefix in front of the placeholder: int32 (non-flexible) or
		// uvarint(len+1) (flexible; 17 encodes in one byte).
		prefixLen := 4
		if flexible {
			prefixLen = 1
		}
		head := out[prev : m-prefixLen]
		var prefix []byte
		if flexible {
			prefix = kbin.AppendUvarint(nil, uint32(p.res.Size)+1)
		} else {
			prefix = kbin.AppendInt32(nil, int32(p.res.Size))
		}
		total += int64(len(prefix)-prefixLen) + p.res.Size - markerLen
		pieces = append(pieces, piece{bytes: head}, piece{bytes: prefix}, piece{res: p.res})
		prev = m + markerLen
	}
	pieces = append(pieces, piece{bytes: out[prev:]})
	binary.BigEndian.PutUint32(out, uint32(total))

	var bufs net.Buffers
	written := int64(0)
	flush := func() error {
		if len(bufs) == 0 {
			return nil
		}
		n, err := bufs.WriteTo(c.nc)
		written += n
		bufs = bufs[:0]
		return err
	}
	for _, pc := range pieces {
		if pc.res == nil {
			if len(pc.bytes) > 0 {
				bufs = append(bufs, pc.bytes)
			}
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		n, err := c.sendRecords(pc.res)
		written += n
		if err != nil {
			return err
		}
	}
	err := flush()
	c.b.metrics.bytesOutTotal.Add(float64(written))
	return err
}

// sendRecords writes every chunk of res to the connection, with sendfile when both ends allow
// it. A chunk shorter than promised (a segment truncated under us) closes the connection: the
// frame length is already on the wire.
func (c *conn) sendRecords(res *storage.ReadResult) (int64, error) {
	var total int64
	for _, ch := range res.Chunks {
		var n int64
		var err error
		var osf *os.File
		if of, ok := ch.File.(storage.OSFile); ok && zeroCopy {
			osf = of.OSFile() // nil while read errors are injected (faultfs)
		}
		if osf != nil {
			n, err = sendfileTo(c.nc, osf, ch.Pos, ch.Len)
		} else {
			n, err = io.Copy(c.nc, io.NewSectionReader(ch.File, ch.Pos, ch.Len))
		}
		total += n
		if err != nil {
			return total, err
		}
		if n != ch.Len {
			return total, fmt.Errorf("broker: segment data shrank while sending (%d of %d bytes)", n, ch.Len)
		}
	}
	return total, nil
}

// sendfileTo copies n bytes at off of f to nc with sendfile(2), falling back to a copy when
// nc is not a TCP connection.
func sendfileTo(nc net.Conn, f *os.File, off, n int64) (int64, error) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return io.Copy(nc, io.NewSectionReader(f, off, n))
	}
	src, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	dst, err := tc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var written int64
	var opErr error
	cerr := src.Read(func(srcFD uintptr) bool {
		werr := dst.Write(func(dstFD uintptr) bool {
			for written < n {
				pos := off + written
				chunk := n - written
				if chunk > 1<<30 {
					chunk = 1 << 30
				}
				m, err := unix.Sendfile(int(dstFD), int(srcFD), &pos, int(chunk))
				if m > 0 {
					written += int64(m)
				}
				if err == syscall.EAGAIN {
					return false // wait until the socket is writable
				}
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					opErr = err
					return true
				}
				if m == 0 {
					return true // end of file: the caller reports the short copy
				}
			}
			return true
		})
		if werr != nil && opErr == nil {
			opErr = werr
		}
		return true
	})
	if cerr != nil && opErr == nil {
		opErr = cerr
	}
	return written, opErr
}
