package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kchaos/kchaos/broker/clock"
	"github.com/kchaos/kchaos/broker/storage"
)

// Broker is a kchaos reference broker. Create it with New, run it with Run (or Start), stop
// it with Close, which flushes and closes every log cleanly. Every broker is a node of a
// cluster with a controller quorum (see cluster.go); a lone broker is a cluster of one.
//
// Lock order: Broker.mu before partition.appendMu before partition.mu (all of LOCKS.md).
type Broker struct {
	cfg     Config
	log     *slog.Logger
	fs      storage.FS
	clock   *clock.Clock
	metrics *metrics
	groups  *coordinator
	// readAboveHW is the kchaos.bug.read-above-high-watermark switch (bugs.go), read once.
	readAboveHW bool
	// txns is the transaction coordinator.
	txns *txnCoordinator
	// producerIDs issues producer ids for InitProducerId.
	producerIDs *producerIDs
	// cl is the broker's part in the cluster: its controller quorum node (started by Start),
	// registration, metadata image and connections to the other brokers.
	cl *cluster
	// sec holds the client listeners besides the inter-broker one (listeners.go).
	sec *security

	ln        net.Listener
	advertise hostPort
	metricsLn net.Listener
	metricsSv *http.Server

	mu         sync.RWMutex // guards topics and topicsByID
	topics     map[string]*topic
	topicsByID map[[16]byte]*topic

	// requestMem bounds produce requests held in memory (queued.max.request.bytes).
	requestMem *memPool

	// arrivals wakes long-polling fetches when a high watermark moves.
	arrivals *broadcast
	// fetchSessions holds the incremental fetch sessions (KIP-227).
	fetchSessions *fetchSessionCache

	connMu sync.Mutex // guards conns
	conns  map[net.Conn]struct{}
	connWG sync.WaitGroup

	stop     chan struct{}
	stopOnce sync.Once
	bgWG     sync.WaitGroup
}

type hostPort struct {
	host string
	port int32
}

// Options are the broker's seams: file system, wall clock and logger. Zero values mean the
// real file system, the true time and slog.Default().
type Options struct {
	FS     storage.FS
	Clock  *clock.Clock
	Logger *slog.Logger
}

// New checks the configuration and opens the broker's data directory. It does not listen
// yet; the logs are opened and recovered once Start has the metadata image that lists them.
func New(cfg Config, opts Options) (*Broker, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("broker: a data directory is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9092"
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "kchaos-local"
	}
	if err := ValidateProps(cfg.Props); err != nil {
		return nil, err
	}
	sec, err := newSecurity(&cfg)
	if err != nil {
		return nil, err
	}
	if opts.FS == nil {
		opts.FS = storage.OS
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg.dynamic = &dynamicConfigs{}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	b := &Broker{
		cfg:        cfg,
		log:        opts.Logger.With("node", cfg.NodeID),
		fs:         opts.FS,
		clock:      opts.Clock,
		metrics:    newMetrics(),
		topics:     map[string]*topic{},
		topicsByID: map[[16]byte]*topic{},
		arrivals:   newBroadcast(),
		requestMem: newMemPool(cfg.propInt("queued.max.request.bytes")),
		conns:      map[net.Conn]struct{}{},
		stop:       make(chan struct{}),
		sec:        sec,
	}
	b.fetchSessions = newFetchSessionCache(int(cfg.propInt("max.incremental.fetch.session.cache.slots")),
		rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), b.metrics.fetchSessions)
	pids, err := newProducerIDs(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	b.producerIDs = pids
	b.readAboveHW = cfg.bug(bugReadAboveHW)
	b.groups = newCoordinator(b)
	b.txns = newTxnCoordinator(b)
	b.cl = newCluster(b)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, legacyMetaFile)); err == nil {
		return nil, fmt.Errorf("broker: %s holds %s, the topic list of an older single-node broker; topics now live in the controller quorum's log (DATA_DIR/controller): start on a new data directory", cfg.DataDir, legacyMetaFile)
	}
	return b, nil
}

// legacyMetaFile is where single-node brokers before the one-mode broker kept their topics;
// a data directory holding it cannot be read by this broker.
const legacyMetaFile = "kchaos-topics.json"

// Start listens on the configured addresses and serves in the background.
func (b *Broker) Start() error {
	ln, err := net.Listen("tcp", b.cfg.Listen)
	if err != nil {
		return fmt.Errorf("broker: listen: %w", err)
	}
	b.ln = ln
	addr := b.cfg.AdvertisedAddr
	if addr == "" {
		addr = ln.Addr().String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("broker: advertised address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		ln.Close()
		return fmt.Errorf("broker: advertised port %q: %w", port, err)
	}
	b.advertise = hostPort{host: host, port: int32(p)}
	if err := b.startListeners(); err != nil {
		ln.Close()
		return err
	}
	if b.cfg.MetricsAddr != "" {
		if err := b.serveMetrics(); err != nil {
			ln.Close()
			return err
		}
	}
	// Before accepting: handlers read b.cl. Peers' connections wait in the backlog.
	if err := b.startCluster(); err != nil {
		b.Close()
		return err
	}
	b.bgWG.Add(3)
	go b.acceptLoop()
	go b.maintainLoop()
	go b.groups.tickLoop()
	b.bgWG.Add(1)
	go b.txns.tickLoop()
	b.log.Info("broker listening", "addr", ln.Addr().String(), "listeners", b.listenersDesc(), "metrics", b.MetricsAddr(), "data_dir", b.cfg.DataDir)
	return nil
}

// Addr returns the client listener's address once started.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// MetricsAddr returns the metrics listener's address, or "" when metrics are off.
func (b *Broker) MetricsAddr() string {
	if b.metricsLn == nil {
		return ""
	}
	return b.metricsLn.Addr().String()
}

// Run starts the broker and blocks until ctx is done, then closes it.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return b.Close()
}

func (b *Broker) acceptLoop() {
	defer b.bgWG.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			select {
			case <-b.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			b.log.Error("accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
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
		go b.serveConn(nc, false)
	}
}

// maintainLoop runs retention, rolling, time-based flushes and compaction on every log once
// per log.retention.check.interval.ms (default here 1s; Kafka's is 5 minutes).
func (b *Broker) maintainLoop() {
	defer b.bgWG.Done()
	iv := time.Duration(b.cfg.propInt("log.retention.check.interval.ms")) * time.Millisecond
	if iv <= 0 {
		iv = time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			now := b.now()
			for _, p := range b.allPartitions() {
				if err := p.log.Maintain(now, p.HighWatermark()); err != nil {
					b.log.Warn("log maintenance", "topic", p.topic.name, "partition", p.index, "err", err)
				}
			}
		}
	}
}

// now is the broker's wall clock (package clock): every time that Kafka's semantics read
// from the wall clock comes from here, so a clock fault shifts all of them at once.
func (b *Broker) now() time.Time { return b.clock.Now() }

// allPartitions returns a snapshot of every hosted partition.
func (b *Broker) allPartitions() []*partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var ps []*partition
	for _, t := range b.topics {
		for _, p := range t.partitions {
			if p != nil {
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// Close stops accepting, closes client connections, then flushes and closes every log so the
// next start needs no recovery. It is safe to call more than once.
func (b *Broker) Close() error {
	var err error
	b.stopOnce.Do(func() {
		close(b.stop)
		if b.ln != nil {
			b.ln.Close()
		}
		b.closeListeners()
		if b.metricsSv != nil {
			b.metricsSv.Close()
		}
		b.connMu.Lock()
		for nc := range b.conns {
			nc.Close()
		}
		b.connMu.Unlock()
		b.arrivals.notify()
		b.connWG.Wait()
		b.cl.stop()
		b.bgWG.Wait()
		err = b.closeLogs()
		b.log.Info("broker stopped")
	})
	return err
}

func (b *Broker) closeLogs() error {
	var first error
	for _, p := range b.allPartitions() {
		if err := p.log.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// broadcast is a condition that many goroutines wait on and one notify wakes all at once.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// wait returns a channel closed at the next notify.
func (c *broadcast) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

func (c *broadcast) notify() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}
