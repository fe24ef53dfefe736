package loadgen

import (
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/workloads"
	"github.com/twmb/franz-go/pkg/kfake"
)

// ackLoser wraps kfake's listener: the broker appends every produce request, but the
// connection carrying every Every-th produce response is closed instead of answering, up
// to Max times. The client sees a lost acknowledgement and retries a batch that is already
// in the log.
type ackLoser struct {
	Every, Max int64
	n, lost    atomic.Int64
}

func (a *ackLoser) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &loserListener{Listener: ln, a: a}, nil
}

type loserListener struct {
	net.Listener
	a *ackLoser
}

func (l *loserListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &loserConn{Conn: c, a: l.a, keys: map[uint32]uint16{}}, nil
}

// loserConn learns each request's API key from the bytes the broker reads (size, key,
// version, correlation id) and drops produce responses as the broker writes them (kfake
// writes one response per Write).
type loserConn struct {
	net.Conn
	a    *ackLoser
	mu   sync.Mutex // guards in, keys
	in   []byte
	keys map[uint32]uint16
}

var errAckLost = errors.New("acknowledgement lost on purpose")

func (c *loserConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in = append(c.in, p[:n]...)
	for len(c.in) >= 4 {
		size := int(binary.BigEndian.Uint32(c.in))
		if len(c.in) < 4+size {
			break
		}
		if f := c.in[4 : 4+size]; size >= 8 {
			c.keys[binary.BigEndian.Uint32(f[4:8])] = binary.BigEndian.Uint16(f[0:2])
		}
		c.in = append([]byte(nil), c.in[4+size:]...)
	}
	c.mu.Unlock()
	return n, err
}

func (c *loserConn) Write(p []byte) (int, error) {
	if len(p) >= 8 {
		corr := binary.BigEndian.Uint32(p[4:8])
		c.mu.Lock()
		key, ok := c.keys[corr]
		delete(c.keys, corr)
		c.mu.Unlock()
		if ok && key == 0 && c.a.n.Add(1)%c.a.Every == 0 && c.a.lost.Add(1) <= c.a.Max {
			c.Conn.Close()
			return 0, errAckLost
		}
	}
	return c.Conn.Write(p)
}

// TestLostAcksDuplicateWithoutIdempotence loses produce acknowledgements after the broker
// appended the batch: without idempotence the retried batch is written twice and the
// checker reports duplicates (allowed: no-duplicates is not claimed); with idempotence the
// broker recognises the retry and the checker finds none (no-duplicates holds).
func TestLostAcksDuplicateWithoutIdempotence(t *testing.T) {
	t.Parallel()
	for _, driver := range allDrivers {
		for _, idem := range []bool{false, true} {
			if idem && !slices.Contains(txnDrivers, driver) {
				continue // kafka-go has no idempotent producer
			}
			name := "driver=" + driver + ",idempotence=false"
			if idem {
				name = "driver=" + driver + ",idempotence=true"
			}
			t.Run(name, func(t *testing.T) {
				loser := &ackLoser{Every: 15, Max: 4}
				c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(loser.listen))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				rc := smokeConfig(t, func(rc *workloads.RunConfig) {
					rc.Driver = driver
					rc.Producer.Idempotence = idem
					rc.Producer.RequestTimeout = workloads.Duration(2 * time.Second)
					rc.Duration = workloads.Duration(2 * time.Second)
				})
				res, path, _ := runWithHistory(t, rc, c.ListenAddrs())
				cres, err := checker.CheckFile(path)
				if err != nil {
					t.Fatal(err)
				}
				dups := cres.Count(checker.Duplicate)
				g := guarantee(cres, "no-duplicates")
				t.Logf("acks lost %d; sent %d acked %d drained %d; duplicates %d; no-duplicates %s", min(loser.lost.Load(), loser.Max),
					res.Sent, res.Acked, res.Drained, dups, g.Status)
				if loser.lost.Load() == 0 {
					t.Fatal("no acknowledgement was lost")
				}
				if idem {
					if dups != 0 || g.Status != checker.StatusPass {
						t.Errorf("idempotent producer: %d duplicates, no-duplicates %s; examples %+v", dups, g.Status, cres.Anomalies[checker.Duplicate].Examples)
					}
					return
				}
				if dups == 0 || g.Claimed {
					t.Errorf("without idempotence: %d duplicates after lost acks, no-duplicates claimed %v", dups, g.Claimed)
				}
			})
		}
	}
}
