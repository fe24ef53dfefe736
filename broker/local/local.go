// Package local launches a local cluster of `kchaos broker` processes on loopback addresses,
// so that a kill is a real kill -9 of a real process. It is the target of `kchaos run` when no
// --bootstrap is given and of `kchaos cluster up`, and the fixture of cluster tests. It knows
// nothing about workloads.
//
// Every broker gets its own data directory and log file under the cluster directory
// (node-N/data, node-N/broker.log). Brokers are started in their own process group, so a
// Ctrl-C at the terminal reaches only the harness, which then stops them cleanly; they also get
// SIGKILL from the kernel if the harness dies (Linux parent-death signal), so no broker
// outlives the harness that started it.
package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes a local cluster.
type Config struct {
	// Brokers is the number of broker processes; default 1. One broker is a cluster of one,
	// its own controller quorum; two or more form a replicated cluster whose first Voters
	// brokers are the controller quorum's voters (combined mode) and the rest observers.
	Brokers int
	// Dir holds one folder per broker (node-N/data, node-N/broker.log); required.
	Dir string
	// Binary is the kchaos executable; default the running executable.
	Binary string
	// Host is the loopback address brokers listen on; default 127.0.0.1.
	Host string
	// Props are --set key=value broker settings given to every broker.
	Props map[string]string
	// Metrics serves each broker's Prometheus endpoint on Host, port chosen by the broker.
	Metrics bool
	// StartTimeout bounds the wait for a broker to accept connections; default 30s.
	StartTimeout time.Duration
	// StopTimeout is how long a graceful stop waits before SIGKILL; default 10s.
	StopTimeout time.Duration
	// Logger receives launcher events; default slog.Default().
	Logger *slog.Logger
	// Route, when set, is asked for the address broker from dials to reach broker to, for
	// every directed link of a replicated cluster: Kafka links (replica fetches, controller
	// requests) and, with raft set, controller-quorum links. addr is the direct address; the
	// answer may be a proxy in front of it (the chaos layer's per-link proxies). It is called
	// once per link before the brokers start, and again with new addresses if Start has to
	// retry on new ports. Client links come as from = ClientLinks: the
	// answer is what broker to advertises to clients (--advertise).
	Route func(from, to int32, raft bool, addr string) string
	// Security, when set (ssl, sasl_plaintext or sasl_ssl), gives every broker a client
	// listener of that protocol beside its plaintext one, with a CA and a SCRAM user made for
	// the cluster (see security.go and Cluster.Secured). A secured single broker runs as a
	// controller quorum of one, which keeps the SCRAM credentials.
	Security string
	// Place, when set, gives broker id an address of its own and a command prefix to run it
	// under (e.g. ip netns exec NS, for a broker in its own network namespace). The broker
	// then listens on host:PlacedPort for clients and host:PlacedControllerPort for the
	// controller quorum; Host is ignored.
	Place func(id int32) (host string, wrap []string)
}

// PlacedPort and PlacedControllerPort are the ports of a broker placed by Config.Place: its
// address is its own, so fixed ports cannot collide.
const (
	PlacedPort           = 9092
	PlacedControllerPort = 9093
)

// replicated reports whether the brokers form a controller quorum: more than one broker, or a
// secured one (SCRAM credentials live in the quorum's metadata).
func (cfg *Config) replicated() bool { return cfg.Brokers > 1 || cfg.Security != "" }

// ClientLinks is the from of client links in Config.Route.
const ClientLinks int32 = -1

// ClusterDefaults are the settings a replicated local cluster runs with unless Props override
// them: shorter than Kafka's so failures are detected within about a second, as a harness
// needs (Kafka's defaults in parentheses): broker.session.timeout.ms 1000 (9000),
// broker.heartbeat.interval.ms 200 (2000), replica.lag.time.max.ms 10000 (30000),
// replica.fetch.backoff.ms 200 (1000), controller.quorum.fetch.timeout.ms 500 (2000),
// controller.quorum.election.timeout.ms 500 (1000), and offsets.topic.replication.factor at
// most the number of brokers.
var ClusterDefaults = map[string]string{
	"controller.quorum.fetch.timeout.ms":    "500",
	"controller.quorum.election.timeout.ms": "500",
	"broker.session.timeout.ms":             "1000",
	"broker.heartbeat.interval.ms":          "200",
	"replica.lag.time.max.ms":               "10000",
	"replica.fetch.backoff.ms":              "200",
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg   Config
	Nodes []*Node
	// addMu guards added: brokers started by AddNode after Start, kept apart from Nodes,
	// which readers use without a lock.
	addMu sync.Mutex
	added []*Node
	// Secured describes the secured listeners and the client configuration file when
	// Config.Security is set; nil otherwise.
	Secured *Secured
}

// NodeConfig describes one broker process.
type NodeConfig struct {
	// ID is the broker's --node-id.
	ID int32
	// DataDir is the broker's data directory; LogPath the file its log is appended to.
	DataDir string
	LogPath string
	// Binary is the kchaos executable.
	Binary string
	// Listen is the client listener, HOST:PORT; port 0 picks one, which restarts then reuse.
	Listen string
	// MetricsListen, when set, serves Prometheus metrics there (port 0 picks one).
	MetricsListen string
	// Props are --set key=value broker settings.
	Props map[string]string
	// Env is added to the broker's environment.
	Env []string
	// Wrap, when set, is a command prefix the broker runs under: Wrap[0] is executed with
	// Wrap[1:], the binary and its arguments (e.g. ip netns exec NS).
	Wrap []string
	// Voters, ControllerListen, Peers and RaftPeers are the replicated-cluster flags
	// (--voters, --controller-listen, --peer, --raft-peer); empty for a lone broker, which
	// is the only voter of its own quorum on an ephemeral controller port.
	Voters           map[int32]string
	ControllerListen string
	// Advertise, when set, is the address the broker advertises to clients (--advertise).
	Advertise string
	Peers     map[int32]string
	RaftPeers map[int32]string
	// StartTimeout bounds the wait for the broker to accept connections; default 30s.
	StartTimeout time.Duration
	// StopTimeout is how long a graceful stop waits before SIGKILL; default 10s.
	StopTimeout time.Duration
	// Logger receives launcher events; default slog.Default().
	Logger *slog.Logger
}

// Node is one broker process. Its methods are safe for concurrent use.
type Node struct {
	ID      int32
	DataDir string
	LogPath string

	cfg NodeConfig

	mu          sync.Mutex // guards the fields below
	cmd         *exec.Cmd
	addr        string
	metricsAddr string
	logStart    int64         // size of the log file when the current process started
	done        chan struct{} // closed when the process has exited and its log is drained
	waitErr     error
	paused      bool
}

// Start launches cfg.Brokers brokers and waits until each accepts connections. On error it
// stops whatever it started.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Brokers == 0 {
		cfg.Brokers = 1
	}
	if cfg.Brokers < 1 || cfg.Brokers > 200 {
		return nil, fmt.Errorf("local: %d brokers requested; want 1 to 200", cfg.Brokers)
	}
	if cfg.Dir == "" {
		return nil, errors.New("local: a cluster directory is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, cfg)
		if err == nil || attempt == 3 || !errors.Is(err, errPortTaken) {
			return c, err
		}
		cfg.Logger.Warn("a broker port was taken before the broker bound it; starting again on new ports", "attempt", attempt)
	}
}

// errPortTaken marks a start that failed because a chosen port was taken meanwhile.
var errPortTaken = errors.New("local: port taken")

// start is one attempt of Start.
func start(ctx context.Context, cfg Config) (*Cluster, error) {
	c := &Cluster{cfg: cfg}
	if cfg.Security != "" {
		sec, props, err := prepareSecurity(&cfg)
		if err != nil {
			return nil, err
		}
		maps.Copy(props, cfg.Props)
		cfg.Props, c.Secured = props, sec
	}
	ncs, err := nodeConfigs(cfg)
	if err != nil {
		return nil, err
	}
	if c.Secured != nil {
		if err := c.Secured.secureListeners(ncs, cfg.Host); err != nil {
			return nil, err
		}
	}
	// Start all brokers at once: each waits for the quorum, which needs a majority of voters.
	nodes := make([]*Node, len(ncs))
	errs := make([]error, len(ncs))
	var wg sync.WaitGroup
	for i, nc := range ncs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = StartNode(ctx, nc)
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		if n != nil {
			c.Nodes = append(c.Nodes, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		if strings.Contains(err.Error(), "address already in use") && cfg.replicated() {
			return nil, fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := c.WaitReady(rctx); err != nil {
		c.Stop()
		return nil, err
	}
	if c.Secured != nil {
		if err := c.finishSecurity(rctx); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Voters is how many of a replicated cluster's brokers are controller voters: 3, or 5 once
// the cluster has five brokers or more, so that any two brokers can fail and the quorum
// still has a majority (Kafka's advice for production controller quorums).
func Voters(brokers int) int {
	if brokers >= 5 {
		return 5
	}
	return 3
}

// nodeConfigs lays out the brokers of cfg: directories, and for a replicated cluster the
// ports chosen up front (every broker must know the voters and its peers before starting),
// the voters (see Voters) and each broker's routes to the others.
func nodeConfigs(cfg Config) ([]NodeConfig, error) {
	var ncs []NodeConfig
	props := maps.Clone(cfg.Props)
	if cfg.replicated() {
		props = maps.Clone(ClusterDefaults)
		props["offsets.topic.replication.factor"] = strconv.Itoa(min(3, cfg.Brokers))
		maps.Copy(props, cfg.Props)
	}
	kafka, raft := map[int32]string{}, map[int32]string{}
	voters := map[int32]string{}
	for i := 1; i <= cfg.Brokers; i++ {
		id := int32(i)
		dir := filepath.Join(cfg.Dir, "node-"+strconv.Itoa(i))
		host := cfg.Host
		var wrap []string
		if cfg.Place != nil {
			host, wrap = cfg.Place(id)
		}
		nc := NodeConfig{ID: id, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "broker.log"),
			Binary: cfg.Binary, Listen: host + ":0", Props: props, Wrap: wrap,
			StartTimeout: cfg.StartTimeout, StopTimeout: cfg.StopTimeout, Logger: cfg.Logger}
		if cfg.Metrics {
			nc.MetricsListen = host + ":0"
		}
		if cfg.Place != nil {
			nc.Listen = net.JoinHostPort(host, strconv.Itoa(PlacedPort))
		}
		if cfg.replicated() {
			ports := []int{PlacedPort, PlacedControllerPort}
			if cfg.Place == nil {
				var err error
				if ports, err = freePorts(host, 2); err != nil {
					return nil, err
				}
			}
			kafka[id] = net.JoinHostPort(host, strconv.Itoa(ports[0]))
			raft[id] = net.JoinHostPort(host, strconv.Itoa(ports[1]))
			nc.Listen, nc.ControllerListen = kafka[id], raft[id]
			if i <= Voters(cfg.Brokers) {
				voters[id] = raft[id]
			}
		}
		ncs = append(ncs, nc)
	}
	if !cfg.replicated() {
		return ncs, nil
	}
	for i := range ncs {
		nc := &ncs[i]
		if cfg.Route != nil {
			nc.Advertise = cfg.Route(ClientLinks, nc.ID, false, kafka[nc.ID])
		}
		nc.Voters = voters
		nc.Peers, nc.RaftPeers = map[int32]string{}, map[int32]string{}
		for to, addr := range kafka {
			if to == nc.ID {
				continue
			}
			nc.Peers[to] = addr
			if cfg.Route != nil {
				nc.Peers[to] = cfg.Route(nc.ID, to, false, addr)
			}
			if _, voter := voters[to]; voter {
				nc.RaftPeers[to] = raft[to]
				if cfg.Route != nil {
					nc.RaftPeers[to] = cfg.Route(nc.ID, to, true, raft[to])
				}
			}
		}
	}
	return ncs, nil
}

// freePorts returns n ports free on host now, drawn at random below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range), where outgoing connections never take a port: only
// another listener can claim one between this check and the broker's bind, and Start retries
// the cluster on new ports when that happens.
func freePorts(host string, n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	low := ephemeralLow()
	var ports []int
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 1000 {
			return nil, fmt.Errorf("local: no free port on %s below %d", host, low)
		}
		port := 10000 + mrand.IntN(max(low-10000, 1))
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, port)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range; 32768 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 10000 {
		return 32768
	}
	return low
}

// StartNode launches one broker process and waits until it accepts connections; a lone broker
// (no Voters) until it also serves requests.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local: find kchaos binary: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, dir := range []string{cfg.DataDir, filepath.Dir(cfg.LogPath)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
	}
	n := &Node{ID: cfg.ID, DataDir: cfg.DataDir, LogPath: cfg.LogPath, cfg: cfg}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// Bootstrap returns every broker's client address: the address it advertises (a client-link
// proxy when Route placed one), else its listener.
func (c *Cluster) Bootstrap() []string {
	var out []string
	for _, n := range c.Nodes {
		if n.cfg.Advertise != "" {
			out = append(out, n.cfg.Advertise)
		} else if a := n.Addr(); a != "" {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Node returns the broker with the given id, or nil.
func (c *Cluster) Node(id int32) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// AddNode starts one more broker in a replicated cluster — id one above the highest, an
// observer of the controller quorum, its links routed as Start routes them (Config.Route) —
// and waits until it listens. It joins the cluster by registering; it is not in Nodes (see
// Added), and Stop stops it too.
func (c *Cluster) AddNode(ctx context.Context) (*Node, error) {
	if !c.cfg.replicated() || len(c.Nodes) == 0 {
		return nil, errors.New("local: only a replicated cluster can grow")
	}
	c.addMu.Lock()
	defer c.addMu.Unlock()
	all := append(slices.Clone(c.Nodes), c.added...)
	id := int32(0)
	for _, n := range all {
		id = max(id, n.ID)
	}
	id++
	ports, err := freePorts(c.cfg.Host, 2)
	if err != nil {
		return nil, err
	}
	base := c.Nodes[0].cfg
	dir := filepath.Join(c.cfg.Dir, "node-"+strconv.Itoa(int(id)))
	kafka := net.JoinHostPort(c.cfg.Host, strconv.Itoa(ports[0]))
	nc := NodeConfig{ID: id, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "broker.log"), Binary: base.Binary,
		Listen: kafka, ControllerListen: net.JoinHostPort(c.cfg.Host, strconv.Itoa(ports[1])), Props: base.Props, Voters: base.Voters,
		Peers: map[int32]string{}, RaftPeers: map[int32]string{}, StartTimeout: base.StartTimeout, StopTimeout: base.StopTimeout, Logger: base.Logger}
	if c.cfg.Metrics {
		nc.MetricsListen = c.cfg.Host + ":0"
	}
	route := c.cfg.Route
	if route == nil {
		route = func(_, _ int32, _ bool, addr string) string { return addr }
	}
	nc.Advertise = route(ClientLinks, id, false, kafka)
	for _, n := range all {
		nc.Peers[n.ID] = route(id, n.ID, false, n.cfg.Listen)
		if v, ok := base.Voters[n.ID]; ok {
			nc.RaftPeers[n.ID] = route(id, n.ID, true, v)
		}
	}
	n, err := StartNode(ctx, nc)
	if err != nil {
		return nil, err
	}
	c.added = append(c.added, n)
	return n, nil
}

// Added returns the brokers AddNode started.
func (c *Cluster) Added() []*Node {
	c.addMu.Lock()
	defer c.addMu.Unlock()
	return slices.Clone(c.added)
}

// Stop stops every broker gracefully (SIGTERM; SIGKILL after StopTimeout) and waits for
// them. It returns the first error.
func (c *Cluster) Stop() error {
	var wg sync.WaitGroup
	nodes := append(slices.Clone(c.Nodes), c.Added()...)
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Addr returns the broker's client address ("" while it is down).
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// MetricsAddr returns the broker's Prometheus address ("" when metrics are off or it is down).
func (n *Node) MetricsAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.metricsAddr
}

// Pid returns the broker's process id, or 0 while it is down.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.exited() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the broker process is alive (paused counts as alive).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !n.exited()
}

// Done returns a channel closed once the current process has exited and its log is
// complete.
func (n *Node) Done() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

// Log returns what the current (or last) process has logged so far.
func (n *Node) Log() string {
	n.mu.Lock()
	from := n.logStart
	n.mu.Unlock()
	f, err := os.Open(n.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, from, 1<<40))
	return string(b)
}

// logTail returns the last 4 KiB of what the current process logged, for error messages.
func (n *Node) logTail() string {
	l := n.Log()
	if len(l) > 4<<10 {
		l = "..." + l[len(l)-4<<10:]
	}
	return l
}

// exited reports whether the process has exited. n.mu must be held.
func (n *Node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

var fieldRE = regexp.MustCompile(`(?:^| )([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logField returns the value of key in an slog text line, or "".
func logField(line, key string) string {
	for _, m := range fieldRE.FindAllStringSubmatch(line, -1) {
		if m[1] == key {
			return strings.Trim(m[2], `"`)
		}
	}
	return ""
}

// start runs the broker process and waits for its "broker listening" line and, for a lone
// broker, its "broker ready" line.
func (n *Node) start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && !n.exited() {
		return fmt.Errorf("local: broker %d is already running", n.ID)
	}
	cfg := &n.cfg
	args := []string{"broker", "--node-id", strconv.Itoa(int(n.ID)), "--listen", cfg.Listen, "--data-dir", n.DataDir}
	if cfg.MetricsListen != "" {
		args = append(args, "--metrics", cfg.MetricsListen)
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Props)) {
		args = append(args, "--set", k+"="+cfg.Props[k])
	}
	if len(cfg.Voters) > 0 {
		var vs []string
		for _, id := range slices.Sorted(maps.Keys(cfg.Voters)) {
			vs = append(vs, fmt.Sprintf("%d@%s", id, cfg.Voters[id]))
		}
		args = append(args, "--voters", strings.Join(vs, ","))
	}
	if cfg.ControllerListen != "" {
		args = append(args, "--controller-listen", cfg.ControllerListen)
	}
	if cfg.Advertise != "" {
		args = append(args, "--advertise", cfg.Advertise)
	}
	for _, id := range slices.Sorted(maps.Keys(cfg.Peers)) {
		args = append(args, "--peer", fmt.Sprintf("%d=%s", id, cfg.Peers[id]))
	}
	for _, id := range slices.Sorted(maps.Keys(cfg.RaftPeers)) {
		args = append(args, "--raft-peer", fmt.Sprintf("%d=%s", id, cfg.RaftPeers[id]))
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("local: broker %d log: %w", n.ID, err)
	}
	if st, err := logf.Stat(); err == nil {
		n.logStart = st.Size()
	}
	// The log goes through a pipe of our own, not cmd.StderrPipe, so reading it to the end
	// does not race with cmd.Wait closing it.
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return fmt.Errorf("local: broker %d: %w", n.ID, err)
	}
	cmd := exec.Command(cfg.Binary, args...)
	if len(cfg.Wrap) > 0 {
		cmd = exec.Command(cfg.Wrap[0], append(append(slices.Clone(cfg.Wrap[1:]), cfg.Binary), args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.Env = append(os.Environ(), cfg.Env...)
	if err := spawn(cmd); err != nil {
		logf.Close()
		pr.Close()
		pw.Close()
		return fmt.Errorf("local: start broker %d: %w", n.ID, err)
	}
	pw.Close()
	n.cmd = cmd
	n.done = make(chan struct{})
	n.paused = false
	// A lone broker is its own controller quorum: it is ready without the others, so wait
	// for its "broker ready" line. A node of a larger cluster needs a quorum of voters, which
	// may not be up yet: wait only until it listens (see Cluster.WaitReady).
	lone := len(cfg.Voters) == 0
	ready := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		// Copy the broker's log to its file, watching for the readiness line.
		defer close(logDone)
		defer logf.Close()
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		listening := ""
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if sent {
				continue
			}
			if listening == "" && strings.Contains(line, `msg="broker listening"`) {
				listening = line
			}
			if listening != "" && (!lone || strings.Contains(line, `msg="broker ready"`)) {
				ready <- listening
				sent = true
			}
		}
		io.Copy(logf, pr) // a line too long for the scanner: keep the rest raw
	}()
	done := n.done
	go func() {
		err := cmd.Wait()
		<-logDone
		n.mu.Lock()
		n.waitErr = err
		n.addr, n.metricsAddr = "", ""
		n.mu.Unlock()
		close(done)
	}()
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	n.mu.Unlock()
	var line string
	var werr error
	select {
	case line = <-ready:
	case <-done:
		werr = fmt.Errorf("local: broker %d exited before listening; %s:\n%s", n.ID, n.LogPath, n.logTail())
	case <-timer.C:
		werr = fmt.Errorf("local: broker %d did not start within %s; %s:\n%s", n.ID, cfg.StartTimeout, n.LogPath, n.logTail())
	case <-ctx.Done():
		werr = ctx.Err()
	}
	n.mu.Lock()
	if werr == nil {
		n.addr, n.metricsAddr = logField(line, "addr"), logField(line, "metrics")
		if n.addr == "" {
			werr = fmt.Errorf("local: broker %d: no addr in %q", n.ID, line)
		}
	}
	if werr != nil {
		cmd.Process.Kill()
		return werr
	}
	// Restarts reuse the same ports, so clients' bootstrap lists stay valid.
	cfg.Listen = n.addr
	if n.metricsAddr != "" {
		cfg.MetricsListen = n.metricsAddr
	}
	cfg.Logger.Info("broker started", "node", n.ID, "addr", n.addr, "pid", cmd.Process.Pid)
	return nil
}

// signal sends sig to the broker process. n.mu must be held.
func (n *Node) signal(sig syscall.Signal) error {
	if n.cmd == nil || n.exited() {
		return fmt.Errorf("local: broker %d is not running", n.ID)
	}
	return n.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to exit.
func (n *Node) Kill() error {
	n.mu.Lock()
	err := n.signal(syscall.SIGKILL)
	done := n.done
	n.mu.Unlock()
	if err != nil {
		return err
	}
	<-done
	return nil
}

// Stop sends SIGTERM (resuming a paused broker first) and waits up to StopTimeout for a clean
// exit, then kills it. Stopping a broker that is not running is a no-op.
func (n *Node) Stop() error {
	n.mu.Lock()
	if n.cmd == nil || n.exited() {
		n.mu.Unlock()
		return nil
	}
	if n.paused {
		n.signal(syscall.SIGCONT)
		n.paused = false
	}
	err := n.signal(syscall.SIGTERM)
	done := n.done
	n.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-done:
		n.mu.Lock()
		werr := n.waitErr
		n.mu.Unlock()
		if werr != nil {
			return fmt.Errorf("local: broker %d stopped uncleanly: %w; see %s", n.ID, werr, n.LogPath)
		}
		return nil
	case <-time.After(n.cfg.StopTimeout):
		n.Kill()
		return fmt.Errorf("local: broker %d did not stop within %s and was killed", n.ID, n.cfg.StopTimeout)
	}
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (n *Node) Pause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	n.paused = true
	return nil
}

// Resume continues a paused broker with SIGCONT.
func (n *Node) Resume() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.signal(syscall.SIGCONT); err != nil {
		return err
	}
	n.paused = false
	return nil
}

// Restart starts the broker again on the same data directory and port after it stopped or
// was killed.
func (n *Node) Restart(ctx context.Context) error { return n.start(ctx) }

// spawnReqs feeds the spawner goroutine.
var (
	spawnOnce sync.Once
	spawnReqs = make(chan spawnReq)
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// spawn starts cmd from one goroutine locked to its OS thread for the life of the process.
// Linux delivers the parent-death signal (Pdeathsig) when the thread that forked the child
// exits, not the process; Go may end threads while the harness runs, which would SIGKILL a
// healthy broker. A thread that never exits makes the signal mean what it should: the harness
// died.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawnReqs <- r
	return <-r.done
}
