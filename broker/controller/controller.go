package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Controller is one node of the controller quorum: a Raft voter or observer holding the
// metadata image, and, while it is the Raft leader, the active controller that decides every
// change. Methods that change metadata return *NotControllerError on other nodes.
//
// Lock order: mu before hbMu.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	pol   policy
	fsm   *fsm
	raft  *raft.Raft
	store *raftboltdb.BoltStore

	// mu serialises deciding and proposing on the active controller, so every decision is
	// made over the image that includes all earlier decisions (like KRaft's single controller
	// event thread).
	mu sync.Mutex
	// active is true while this node is the Raft leader and has applied every earlier entry.
	active atomic.Bool
	// activeMu guards activeCh, which is closed and replaced whenever active changes.
	activeMu sync.Mutex
	activeCh chan struct{}

	hbMu sync.Mutex
	// lastHeartbeat is each broker's last heartbeat on this active controller. hbMu.
	lastHeartbeat map[int32]time.Time
	// activeSince is when this node last became active, or its session check last ran late;
	// brokers get a full session from it. hbMu.
	activeSince time.Time
	// lastSessionCheck is when checkSessions last ran. hbMu.
	lastSessionCheck time.Time

	notify   chan bool
	stop     chan struct{}
	wg       sync.WaitGroup
	shutdown sync.Once
	shutErr  error
}

// New opens (or creates) the node's Raft state in cfg.DataDir, starts its Raft transport,
// bootstraps the voter configuration on a voter's first start, and returns the running node.
// Call Shutdown to stop it.
func New(cfg Config) (*Controller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	c := &Controller{
		cfg:           cfg,
		log:           cfg.Logger.With("component", "controller", "node", cfg.NodeID),
		pol:           policy{uncleanDefault: cfg.UncleanLeaderElection, node: cfg.NodeID},
		fsm:           newFSM(),
		lastHeartbeat: map[int32]time.Time{},
		activeCh:      make(chan struct{}),
		notify:        make(chan bool, 16),
		stop:          make(chan struct{}),
	}
	hlog := hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       hclog.LevelFromString(cfg.RaftLogLevel),
		Output:      slogWriter{c.log},
		DisableTime: true,
	})

	ln := cfg.RaftListener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			return nil, fmt.Errorf("controller: raft listener: %w", err)
		}
	}
	trans := raft.NewNetworkTransportWithLogger(&tcpStream{Listener: newMuxListener(ln, cfg.ServeAPI), advertise: cfg.RaftAddr, dial: cfg.Dial}, 3, 10*time.Second, hlog)

	c.store, err = raftboltdb.NewBoltStore(filepath.Join(cfg.DataDir, "raft.db"))
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("controller: open raft.db: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		trans.Close()
		c.store.Close()
		return nil, fmt.Errorf("controller: snapshot store: %w", err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.RaftHeartbeatTimeout
	rc.ElectionTimeout = cfg.RaftElectionTimeout
	rc.LeaderLeaseTimeout = min(cfg.RaftHeartbeatTimeout, rc.LeaderLeaseTimeout)
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = c.notify
	rc.Logger = hlog

	if cfg.IsVoter() {
		has, err := raft.HasExistingState(c.store, c.store, snaps)
		if err != nil {
			trans.Close()
			c.store.Close()
			return nil, fmt.Errorf("controller: read raft state: %w", err)
		}
		if !has {
			var servers []raft.Server
			for id, addr := range cfg.Voters {
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: serverID(id), Address: raft.ServerAddress(addr)})
			}
			err := raft.BootstrapCluster(rc, c.store, c.store, snaps, trans, raft.Configuration{Servers: servers})
			if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				trans.Close()
				c.store.Close()
				return nil, fmt.Errorf("controller: bootstrap: %w", err)
			}
		}
	}
	c.raft, err = raft.NewRaft(rc, c.fsm, c.store, c.store, snaps, trans)
	if err != nil {
		trans.Close()
		c.store.Close()
		return nil, fmt.Errorf("controller: start raft: %w", err)
	}
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// Shutdown stops the node: Raft (which closes the transport), the active-controller loops,
// then the log store. It is safe to call more than once.
func (c *Controller) Shutdown() error {
	c.shutdown.Do(func() {
		c.setActive(false)
		err := c.raft.Shutdown().Error()
		close(c.stop)
		c.wg.Wait()
		if cerr := c.store.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			c.shutErr = fmt.Errorf("controller: shutdown: %w", err)
		}
	})
	return c.shutErr
}

// run follows Raft leadership changes, starting the active-controller loops on gaining
// leadership and stopping them on losing it.
func (c *Controller) run() {
	defer c.wg.Done()
	var stopLeading func()
	defer func() {
		if stopLeading != nil {
			stopLeading()
		}
	}()
	for {
		select {
		case <-c.stop:
			return
		case leader := <-c.notify:
			if stopLeading != nil {
				stopLeading()
				stopLeading = nil
			}
			if leader {
				stopLeading = c.startLeading()
			}
		}
	}
}

// startLeading starts lead in a goroutine and returns the function that stops it and waits.
func (c *Controller) startLeading() func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.lead(ctx)
	}()
	return func() {
		c.setActive(false)
		cancel()
		<-done
	}
}

// lead runs while this node is the Raft leader: it waits until every earlier entry is
// applied (Barrier), becomes active, then checks broker sessions every half heartbeat
// interval and preferred leaders every LeaderImbalanceCheckInterval.
func (c *Controller) lead(ctx context.Context) {
	for {
		if err := c.raft.Barrier(c.cfg.ApplyTimeout).Error(); err == nil {
			break
		} else if ctx.Err() != nil {
			return
		} else {
			c.log.Warn("barrier after election failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.hbMu.Lock()
	c.lastHeartbeat = map[int32]time.Time{}
	c.activeSince = c.cfg.Now()
	c.lastSessionCheck = time.Time{}
	c.hbMu.Unlock()
	c.setActive(true)
	c.log.Info("active controller", "index", c.Image().Index)

	for id, addr := range c.cfg.Observers {
		if err := c.AddObserver(id, addr); err != nil {
			c.log.Warn("add observer", "id", id, "addr", addr, "err", err)
		}
	}

	sessions := time.NewTicker(max(c.cfg.BrokerHeartbeatInterval/2, time.Millisecond))
	defer sessions.Stop()
	var rebalance <-chan time.Time
	if c.cfg.LeaderImbalanceCheckInterval > 0 {
		t := time.NewTicker(c.cfg.LeaderImbalanceCheckInterval)
		defer t.Stop()
		rebalance = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sessions.C:
			c.checkSessions()
		case <-rebalance:
			if _, err := c.decide(func(img *Image) ([]Record, error) { return preferredLeaderRecords(img), nil }); err != nil {
				c.log.Warn("preferred leader election", "err", err)
			}
		}
	}
}

// checkSessions fences every broker whose session expired, one entry per broker, then
// reconciles any partition whose leader is not live.
//
// A check that runs late (the controller's process did not get to run for more than a session
// check interval and a heartbeat interval) starts a fresh session for every broker, as a
// controller failover does: heartbeats sent meanwhile may still wait unread in socket buffers,
// so silence during the controller's own stall is no evidence that a broker is gone.
func (c *Controller) checkSessions() {
	img := c.Image()
	now := c.cfg.Now()
	c.hbMu.Lock()
	if gap := now.Sub(c.lastSessionCheck); !c.lastSessionCheck.IsZero() && gap > c.cfg.BrokerHeartbeatInterval/2+c.cfg.BrokerHeartbeatInterval {
		c.log.Warn("session check ran late; restarting broker sessions", "late_by", gap)
		c.activeSince = now
	}
	c.lastSessionCheck = now
	expired := expiredBrokers(img, c.lastHeartbeat, c.activeSince, c.cfg.Now(), c.cfg.BrokerSessionTimeout)
	c.hbMu.Unlock()
	for _, id := range expired {
		c.log.Info("broker session expired; fencing", "broker", id)
		if _, err := c.decide(func(img *Image) ([]Record, error) {
			// Re-check under mu: a heartbeat may have arrived since.
			c.hbMu.Lock()
			still := expiredBrokers(img, c.lastHeartbeat, c.activeSince, c.cfg.Now(), c.cfg.BrokerSessionTimeout)
			c.hbMu.Unlock()
			if !containsID(still, id) {
				return nil, nil
			}
			return fenceRecords(img, c.pol, id)
		}); err != nil {
			c.log.Warn("fence broker", "broker", id, "err", err)
		}
	}
	if _, err := c.decide(func(img *Image) ([]Record, error) { return reconcile(img, c.pol), nil }); err != nil {
		c.log.Warn("reconcile partitions", "err", err)
	}
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// decide runs fn over the current image on the active controller and proposes the records it
// returns as one entry, returning the image that includes them. fn returning no records
// proposes nothing and returns the current image.
func (c *Controller) decide(fn func(img *Image) ([]Record, error)) (*Image, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active.Load() {
		return nil, c.notController()
	}
	img := c.Image()
	recs, err := fn(img)
	if err != nil || len(recs) == 0 {
		return img, err
	}
	return c.propose(recs)
}

// propose appends recs as one entry and waits until this node applied it. mu must be held.
func (c *Controller) propose(recs []Record) (*Image, error) {
	data, err := encodeEntry(recs)
	if err != nil {
		return nil, err
	}
	f := c.raft.Apply(data, c.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown) {
			return nil, c.notController()
		}
		return nil, fmt.Errorf("controller: propose: %w", err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return nil, fmt.Errorf("controller: propose: unexpected apply response %T", f.Response())
	}
	return res.img, res.err
}

func (c *Controller) notController() *NotControllerError {
	return &NotControllerError{LeaderID: c.LeaderID()}
}

// LeaderID returns the node id of the current Raft leader (the active controller), or -1
// while none is known.
func (c *Controller) LeaderID() int32 {
	_, id := c.raft.LeaderWithID()
	n, err := strconv.ParseInt(string(id), 10, 32)
	if id == "" || err != nil {
		return -1
	}
	return int32(n)
}

// ActiveController reports whether this node is the active controller (Kafka's
// ActiveControllerCount is 1 on exactly this node).
func (c *Controller) ActiveController() bool { return c.active.Load() }

// ActiveChanged returns a channel closed the next time this node becomes or stops being the
// active controller, so a caller waiting for it need not poll.
func (c *Controller) ActiveChanged() <-chan struct{} {
	c.activeMu.Lock()
	defer c.activeMu.Unlock()
	return c.activeCh
}

// setActive sets active and wakes ActiveChanged waiters.
func (c *Controller) setActive(on bool) {
	c.activeMu.Lock()
	defer c.activeMu.Unlock()
	if c.active.Swap(on) != on {
		close(c.activeCh)
		c.activeCh = make(chan struct{})
	}
}

// NodeID returns this node's id.
func (c *Controller) NodeID() int32 { return c.cfg.NodeID }

// AddObserver adds node id at Raft address addr as a non-voter (a KRaft observer) so it
// replicates the metadata log. Adding a node that is already a member does nothing.
func (c *Controller) AddObserver(id int32, addr string) error {
	if !c.active.Load() {
		return c.notController()
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("controller: add observer %d: %w", id, err)
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == serverID(id) {
			return nil
		}
	}
	if err := c.raft.AddNonvoter(serverID(id), raft.ServerAddress(addr), 0, c.cfg.ApplyTimeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return c.notController()
		}
		return fmt.Errorf("controller: add observer %d: %w", id, err)
	}
	c.log.Info("added observer", "id", id, "addr", addr)
	return nil
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

// tcpStream is the Raft transport's stream layer over the controller listener (Raft's share of
// it; see muxListener).
type tcpStream struct {
	net.Listener
	advertise string
	dial      func(addr string, timeout time.Duration) (net.Conn, error)
}

func (s *tcpStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.dial != nil {
		return s.dial(string(addr), timeout)
	}
	return net.DialTimeout("tcp", string(addr), timeout)
}

// Addr returns the advertised address, which peers use to reach this node.
func (s *tcpStream) Addr() net.Addr { return advertisedAddr(s.advertise) }

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// slogWriter forwards hashicorp/raft's hclog lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			line, level = strings.TrimSpace(rest), l
			break
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
