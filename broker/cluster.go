package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

// cluster is the broker's part in its cluster: its controller quorum node (KRaft-style, on
// hashicorp/raft), its registration and heartbeats, the metadata image it follows to lead or
// follow partitions, and its connections to the other brokers. There is one code path: a
// broker started without Config.Voters is a cluster of one, the sole voter of its own quorum
// on its own controller listener, registering with itself and leading every partition, with
// Kafka's defaults for a lone broker.
type cluster struct {
	b   *Broker
	ctl *controller.Controller
	// ctlReady is closed once ctl is set: the controller listener accepts connections while
	// the controller starts, and their requests must wait for it.
	ctlReady chan struct{}

	// brokerEpoch is this broker's registration epoch; 0 while unregistered.
	brokerEpoch atomic.Int64
	// img is the last image applied to the local partitions.
	img atomic.Pointer[controller.Image]

	// caughtUp is closed the first time an applied image shows this broker registered and
	// unfenced, i.e. once it has caught up with the metadata log, opened its partitions and
	// loaded the coordinators' state of those it leads. Until then client requests wait, as
	// a Kafka broker does not process requests before its initial catch-up: a restarted broker
	// must not answer Metadata from an empty image.
	caughtUp     chan struct{}
	caughtUpOnce sync.Once
	// started is when Start began, for the catch-up log line.
	started time.Time

	mu sync.Mutex // guards the maps below
	// channels holds, per controller channel, a connection to each voter's controller
	// listener.
	channels [numControllerChannels]map[int32]*peerClient
	fetchers map[int32]*fetcher
}

// controllerChannel names one of a broker's connections to the active controller. As in
// Kafka, whose BrokerLifecycleManager, AlterPartitionManager and forwarding manager each own
// a channel to the controller, a heartbeat never waits behind an AlterPartition or a forwarded
// admin request that waits for a metadata commit (an fsync of the quorum's log, which takes
// seconds when the disk is busy): a heartbeat starved that way let the controller fence
// healthy brokers under load.
type controllerChannel int

const (
	// lifecycleChannel carries BrokerRegistration and BrokerHeartbeat.
	lifecycleChannel controllerChannel = iota
	// alterPartitionChannel carries AlterPartition (ISR changes).
	alterPartitionChannel
	// forwardingChannel carries admin requests forwarded to the controller (KIP-590).
	forwardingChannel
	numControllerChannels
)

// clusterRequestTimeout bounds one controller request (registration, heartbeat,
// AlterPartition, forwarded admin requests), retries included.
const clusterRequestTimeout = 10 * time.Second

// loneVoterRaftTimeout is the Raft heartbeat and election timeout of a quorum of one voter:
// there is nobody to wait for, so the only effect of a timeout is how long the node waits
// before electing itself at start-up. Default 25ms; larger quorums use
// controller.quorum.fetch.timeout.ms and controller.quorum.election.timeout.ms.
const loneVoterRaftTimeout = 25 * time.Millisecond

func newCluster(b *Broker) *cluster {
	cl := &cluster{b: b, fetchers: map[int32]*fetcher{}, caughtUp: make(chan struct{}), ctlReady: make(chan struct{})}
	for i := range cl.channels {
		cl.channels[i] = map[int32]*peerClient{}
	}
	return cl
}

// startCluster starts the controller node and the loops that register, heartbeat and follow
// the metadata image. The client listener must already be open. Without Config.Voters the
// broker is the lone voter of its own quorum, on Config.ControllerListen or, by default, an
// ephemeral port on the client listener's host.
func (b *Broker) startCluster() error {
	cfg := b.cfg
	cl := b.cl
	cl.started = time.Now()
	var raftLn net.Listener
	switch {
	case len(cfg.Voters) == 0:
		addr := cfg.ControllerListen
		if addr == "" {
			host, _, _ := net.SplitHostPort(b.ln.Addr().String())
			addr = net.JoinHostPort(host, "0")
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("broker: controller listener: %w", err)
		}
		raftLn, cfg.ControllerListen = ln, ln.Addr().String()
		cfg.Voters = map[int32]string{cfg.NodeID: cfg.ControllerListen}
		b.cfg.Voters, b.cfg.ControllerListen = cfg.Voters, cfg.ControllerListen
	case cfg.ControllerListen == "":
		addr, ok := cfg.Voters[cfg.NodeID]
		if !ok {
			return errors.New("broker: --controller-listen is required for a broker that is not a voter")
		}
		cfg.ControllerListen = addr
		b.cfg.ControllerListen = addr
	}
	dial := func(addr string, timeout time.Duration) (net.Conn, error) {
		for id, voter := range cfg.Voters {
			if voter == addr {
				if via, ok := cfg.RaftPeers[id]; ok {
					addr = via
				}
				break
			}
		}
		return net.DialTimeout("tcp", addr, timeout)
	}
	ms := func(k string) time.Duration { return time.Duration(b.cfg.propInt(k)) * time.Millisecond }
	heartbeat := ms("controller.quorum.fetch.timeout.ms")
	election := max(ms("controller.quorum.election.timeout.ms"), heartbeat)
	if _, self := cfg.Voters[cfg.NodeID]; self && len(cfg.Voters) == 1 {
		heartbeat, election = loneVoterRaftTimeout, loneVoterRaftTimeout
	}
	ctl, err := controller.New(controller.Config{
		NodeID:                       cfg.NodeID,
		RaftAddr:                     cfg.ControllerListen,
		RaftListener:                 raftLn,
		Voters:                       cfg.Voters,
		Dial:                         dial,
		DataDir:                      filepath.Join(cfg.DataDir, "controller"),
		BrokerSessionTimeout:         ms("broker.session.timeout.ms"),
		BrokerHeartbeatInterval:      ms("broker.heartbeat.interval.ms"),
		LeaderImbalanceCheckInterval: leaderImbalanceInterval(&b.cfg),
		UncleanLeaderElection:        b.cfg.propBool("unclean.leader.election.enable"),
		DefaultPartitions:            int32(b.cfg.propInt("num.partitions")),
		DefaultReplicationFactor:     int16(b.cfg.propInt("default.replication.factor")),
		ValidateTopicConfigs:         validateTopicConfigs,
		ValidateBrokerConfigs:        validateBrokerConfigs,
		ServeAPI:                     b.serveControllerConn,
		RaftHeartbeatTimeout:         heartbeat,
		RaftElectionTimeout:          election,
		Logger:                       b.log,
	})
	if err != nil {
		if raftLn != nil {
			raftLn.Close()
		}
		return err
	}
	if err := ctl.RegisterMetrics(b.metrics.reg); err != nil {
		ctl.Shutdown()
		return err
	}
	cl.ctl = ctl
	close(cl.ctlReady)
	b.metrics.registerCluster(b)
	b.bgWG.Add(3)
	go cl.heartbeatLoop()
	go cl.imageLoop()
	go cl.isrLoop()
	return nil
}

// leaderImbalanceInterval is leader.imbalance.check.interval.seconds, or negative when
// auto.leader.rebalance.enable is false.
func leaderImbalanceInterval(c *Config) time.Duration {
	if !c.propBool("auto.leader.rebalance.enable") {
		return -1
	}
	return time.Duration(c.propInt("leader.imbalance.check.interval.seconds")) * time.Second
}

// stop stops fetchers, peer connections and the controller node (if Start got to start it).
func (cl *cluster) stop() {
	cl.mu.Lock()
	for _, f := range cl.fetchers {
		f.close()
	}
	for _, ch := range cl.channels {
		for _, pc := range ch {
			pc.Close()
		}
	}
	cl.mu.Unlock()
	if cl.ctl == nil {
		return
	}
	if err := cl.ctl.Shutdown(); err != nil {
		cl.b.log.Warn("controller shutdown", "err", err)
	}
}

// resolve returns the Kafka address this broker dials to reach broker id: its peer-map entry,
// else its registered listener.
func (cl *cluster) resolve(id int32) (string, error) {
	if addr, ok := cl.b.cfg.Peers[id]; ok {
		return addr, nil
	}
	if br := cl.ctl.Image().Brokers[id]; br != nil {
		return net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))), nil
	}
	return "", fmt.Errorf("broker: no address known for broker %d", id)
}

// controllerAddr returns the controller listener address this broker dials to reach voter id:
// its --raft-peer route, else its --voters entry.
func (cl *cluster) controllerAddr(id int32) (string, error) {
	if addr, ok := cl.b.cfg.RaftPeers[id]; ok {
		return addr, nil
	}
	if addr, ok := cl.b.cfg.Voters[id]; ok {
		return addr, nil
	}
	return "", fmt.Errorf("broker: broker %d is not a controller voter", id)
}

// client returns channel ch's connection to voter id's controller listener.
func (cl *cluster) client(ch controllerChannel, id int32) *peerClient {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	pc := cl.channels[ch][id]
	if pc == nil {
		pc = newPeerClient(cl.b.cfg.NodeID, id, cl.controllerAddr)
		pc.dial = func(ctx context.Context, addr string) (net.Conn, error) { return controller.DialAPI(ctx, nil, addr) }
		cl.channels[ch][id] = pc
	}
	return pc
}

// errLocalController tells toController's caller that this node is the active controller and
// must handle the request itself.
var errLocalController = errors.New("broker: this node is the active controller")

// toController sends req on channel ch to the active controller's controller listener and
// returns its response. It retries while no controller is known or the one asked answers
// NOT_CONTROLLER (via notController), and returns errLocalController when this node is active.
func (cl *cluster) toController(ctx context.Context, ch controllerChannel, req kmsg.Request, notController func(kmsg.Response) bool) (kmsg.Response, error) {
	backoff := 20 * time.Millisecond
	voters := slices.Sorted(maps.Keys(cl.b.cfg.Voters))
	for attempt := 0; ; attempt++ {
		activeChanged := cl.ctl.ActiveChanged()
		leader := cl.ctl.LeaderID()
		if leader == cl.b.cfg.NodeID && cl.ctl.ActiveController() {
			return nil, errLocalController
		}
		if leader < 0 && !cl.b.cfg.isVoter() {
			// An observer learns the Raft leader only once the quorum has added it (at its
			// registration): until then it asks the voters in turn.
			leader = voters[attempt%len(voters)]
		}
		if leader >= 0 && leader != cl.b.cfg.NodeID {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			resp, err := cl.client(ch, leader).Request(rctx, req, 0)
			cancel()
			if err == nil && !notController(resp) {
				return resp, nil
			}
			if err != nil {
				cl.b.log.Debug("controller request", "controller", leader, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("broker: no active controller answered: %w", ctx.Err())
		case <-cl.b.stop:
			return nil, errors.New("broker: shutting down")
		case <-activeChanged:
			// This node just became (or stopped being) the active controller: a lone
			// broker's quorum is ready the moment it elects itself.
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// register registers this broker with the active controller and returns its broker epoch.
func (cl *cluster) register(ctx context.Context) (int64, error) {
	b := cl.b
	reg := controller.Registration{ID: b.cfg.NodeID, Host: b.advertise.host, Port: b.advertise.port,
		RaftAddr: b.cfg.ControllerListen, Listeners: b.registrationListeners()}
	if _, voter := b.cfg.Voters[b.cfg.NodeID]; voter {
		reg.RaftAddr = ""
	}
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = reg.ID
	req.ClusterID = b.cfg.ClusterID
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", reg.Host, uint16(reg.Port)
	req.Listeners = append(req.Listeners, l)
	for _, e := range reg.Listeners {
		l.Name, l.Host, l.Port = e.Name, e.Host, uint16(e.Port)
		req.Listeners = append(req.Listeners, l)
	}
	if reg.RaftAddr != "" {
		host, port, err := net.SplitHostPort(reg.RaftAddr)
		if err != nil {
			return 0, fmt.Errorf("broker: controller listener %q: %w", reg.RaftAddr, err)
		}
		n, _ := strconv.Atoi(port)
		c := kmsg.NewBrokerRegistrationRequestListener()
		c.Name, c.Host, c.Port = "CONTROLLER", host, uint16(n)
		req.Listeners = append(req.Listeners, c)
	}
	resp, err := cl.toController(ctx, lifecycleChannel, req, func(r kmsg.Response) bool {
		return r.(*kmsg.BrokerRegistrationResponse).ErrorCode == kerr.NotController.Code
	})
	if errors.Is(err, errLocalController) {
		return cl.ctl.RegisterBroker(reg)
	}
	if err != nil {
		return 0, err
	}
	rr := resp.(*kmsg.BrokerRegistrationResponse)
	if rr.ErrorCode != 0 {
		return 0, kerr.ErrorForCode(rr.ErrorCode)
	}
	return rr.BrokerEpoch, nil
}

// heartbeat sends one heartbeat and reports whether the broker is fenced.
func (cl *cluster) heartbeat(ctx context.Context, epoch int64) (bool, error) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = cl.b.cfg.NodeID, epoch
	req.CurrentMetadataOffset = int64(cl.ctl.Image().Index)
	resp, err := cl.toController(ctx, lifecycleChannel, req, func(r kmsg.Response) bool {
		return r.(*kmsg.BrokerHeartbeatResponse).ErrorCode == kerr.NotController.Code
	})
	if errors.Is(err, errLocalController) {
		return cl.ctl.Heartbeat(cl.b.cfg.NodeID, epoch)
	}
	if err != nil {
		return false, err
	}
	hr := resp.(*kmsg.BrokerHeartbeatResponse)
	if hr.ErrorCode != 0 {
		return hr.IsFenced, kerr.ErrorForCode(hr.ErrorCode)
	}
	return hr.IsFenced, nil
}

// heartbeatLoop registers the broker, then heartbeats every broker.heartbeat.interval.ms,
// registering again when the controller no longer knows this incarnation.
func (cl *cluster) heartbeatLoop() {
	defer cl.b.bgWG.Done()
	interval := time.Duration(cl.b.cfg.propInt("broker.heartbeat.interval.ms")) * time.Millisecond
	fenced := true
	for {
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		wait := interval
		epoch := cl.brokerEpoch.Load()
		if epoch == 0 {
			e, err := cl.register(ctx)
			if err != nil {
				cl.b.log.Warn("broker registration", "err", err)
				wait = 200 * time.Millisecond
			} else {
				cl.brokerEpoch.Store(e)
				cl.b.log.Info("registered with the controller", "broker_epoch", e)
				wait = 0
			}
		} else {
			f, err := cl.heartbeat(ctx, epoch)
			switch {
			case errors.Is(err, kerr.StaleBrokerEpoch) || errors.Is(err, kerr.BrokerIDNotRegistered):
				cl.b.log.Warn("heartbeat refused, registering again", "err", err)
				cl.brokerEpoch.Store(0)
				wait = 0
			case err != nil:
				cl.b.log.Warn("heartbeat", "err", err)
				wait = min(interval, 500*time.Millisecond)
			default:
				if f != fenced {
					cl.b.log.Info("broker fencing changed", "fenced", f)
				}
				fenced = f
				if f {
					wait = min(interval, 200*time.Millisecond)
				}
			}
		}
		cancel()
		select {
		case <-cl.b.stop:
			return
		case <-time.After(wait):
		}
	}
}

// imageLoop applies every new metadata image to the local partitions. The first image that
// shows this incarnation of the broker live (registered with its current broker epoch and
// unfenced) ends its initial catch-up: once the
// coordinators have loaded the internal partitions it leads, client requests are served.
func (cl *cluster) imageLoop() {
	defer cl.b.bgWG.Done()
	for {
		img, changed := cl.ctl.Watch()
		if prev := cl.img.Load(); prev == nil || prev.Index != img.Index {
			cl.b.applyImage(img)
			cl.img.Store(img)
			if br := img.Brokers[cl.b.cfg.NodeID]; br != nil && !br.Fenced && br.Epoch == cl.brokerEpoch.Load() {
				cl.caughtUpOnce.Do(func() {
					// Off this loop: the loads may take a while, and images keep coming.
					cl.b.bgWG.Add(1)
					go cl.markCaughtUp()
				})
			}
		}
		select {
		case <-cl.b.stop:
			return
		case <-changed:
		}
	}
}

// markCaughtUp waits for the coordinators' loads queued so far, logs what the broker
// recovered and lets client requests through.
func (cl *cluster) markCaughtUp() {
	b := cl.b
	defer b.bgWG.Done()
	b.groups.awaitHandoffs()
	b.txns.awaitHandoffs()
	b.removeStrayLogs()
	topics, parts := 0, 0
	b.mu.RLock()
	for _, t := range b.topics {
		topics++
		for _, p := range t.partitions {
			if p != nil {
				parts++
			}
		}
	}
	b.mu.RUnlock()
	b.log.Info("recovered logs", "topics", topics, "partitions", parts, "took", time.Since(cl.started))
	close(cl.caughtUp)
	b.log.Info("broker ready", "controller", cl.ctl.LeaderID())
}

// waitCaughtUp waits until the broker has first been unfenced; false when the broker stops
// first.
func (cl *cluster) waitCaughtUp() bool {
	select {
	case <-cl.caughtUp:
		return true
	case <-cl.b.stop:
		return false
	}
}
