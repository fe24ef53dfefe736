package chaos

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHCluster is a cluster file: how to reach each broker's host over SSH and, per fault kind,
// the shell commands that make the fault happen and undo it there. Commands are templates:
// {node} is the broker id, {host} its SSH address, {addr} its address as its peers see it
// (for firewall rules), and each entry of the broker's vars is {name}. Network kinds run once
// per cut pair on each side, with {peer} and {peer_node} naming the other broker.
//
//	user: kafka
//	key: ~/.ssh/id_ed25519
//	known_hosts: ~/.ssh/known_hosts
//	brokers:
//	  1: {host: "10.0.0.1:22", addr: 10.0.0.1}
//	faults:
//	  kill: {apply: "systemctl kill -s KILL kafka", undo: "systemctl start kafka"}
//	  partition: {apply: "iptables -A INPUT -s {peer} -j DROP", undo: "iptables -D INPUT -s {peer} -j DROP"}
//	  clock-bump: {apply: "date -s @$(( $(date +%s) + {delta_s} ))", undo: "chronyc makestep"}
//
// A fault's params are template values too: {offset} is the text given (or the kind's
// default), and a duration param also gives {offset_s} and {offset_ms}, whole seconds and
// milliseconds, negative for the past. Clock faults over ssh move the host's clock, which
// every process there shares: stop the host's time sync (chronyd, ntpd, systemd-timesyncd)
// in apply and restart it in undo, or it slews the clock back.
type SSHCluster struct {
	// User is the SSH user; required.
	User string `yaml:"user"`
	// Key is the private key file; required.
	Key string `yaml:"key"`
	// KnownHosts is the known_hosts file that must list every host's key; required (host
	// keys are always checked).
	KnownHosts string `yaml:"known_hosts"`
	// Timeout bounds connecting and each command; default 30s.
	Timeout Duration `yaml:"timeout"`
	// Brokers maps broker ids to their hosts.
	Brokers map[int32]SSHHost `yaml:"brokers"`
	// Faults maps fault kinds to their commands.
	Faults map[Kind]SSHCommands `yaml:"faults"`
}

// SSHHost is one broker's host.
type SSHHost struct {
	// Host is HOST:PORT of its sshd (port default 22).
	Host string `yaml:"host"`
	// Addr is the broker's address as other brokers see it; default Host without the port.
	Addr string `yaml:"addr"`
	// Vars are extra template values for this broker's commands.
	Vars map[string]string `yaml:"vars"`
}

// SSHCommands are the commands of one fault kind.
type SSHCommands struct {
	// Apply makes the fault happen; required.
	Apply string `yaml:"apply"`
	// Undo ends it; empty for kinds that need no undo (restart).
	Undo string `yaml:"undo"`
}

// LoadSSHCluster reads and checks a cluster file.
func LoadSSHCluster(path string) (*SSHCluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chaos: cluster file: %w", err)
	}
	var c SSHCluster
	if err := yaml.UnmarshalWithOptions(b, &c, yaml.Strict(), yaml.UseJSONUnmarshaler()); err != nil {
		return nil, fmt.Errorf("chaos: cluster file %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("chaos: cluster file %s: %w", path, err)
	}
	return &c, nil
}

func (c *SSHCluster) check() error {
	switch {
	case c.User == "" || c.Key == "" || c.KnownHosts == "":
		return fmt.Errorf("user, key and known_hosts are required")
	case len(c.Brokers) == 0:
		return fmt.Errorf("no brokers")
	}
	for k, cmd := range c.Faults {
		if _, ok := kinds[k]; !ok || k == Random {
			return fmt.Errorf("faults: unknown kind %q", k)
		}
		if cmd.Apply == "" {
			return fmt.Errorf("faults: %s has no apply command", k)
		}
		if !k.Instant() && cmd.Undo == "" && k != LoseUnsynced {
			return fmt.Errorf("faults: %s needs an undo command", k)
		}
		if k.Class() == "membership" {
			return fmt.Errorf("faults: %s goes through the Kafka admin API, not ssh", k)
		}
		if k.Class() == "network" && k != Partition && k != Isolate && k != PartitionHalves && k != MajoritiesRing && k != Bridge && k != LeaderIsolateFromFollowers {
			return fmt.Errorf("faults: %s is link degradation, which the ssh driver does not do", k)
		}
	}
	for id, h := range c.Brokers {
		if h.Host == "" {
			return fmt.Errorf("broker %d has no host", id)
		}
	}
	return nil
}

// SSH is the driver for remote clusters: it runs the cluster file's commands on the brokers'
// hosts over SSH. Host keys are checked against the cluster file's known_hosts.
type SSH struct {
	cluster *SSHCluster
	config  *ssh.ClientConfig

	mu    sync.Mutex // guards conns
	conns map[string]*ssh.Client
}

var _ Driver = (*SSH)(nil)

// NewSSH returns a driver for cluster; it connects on first use. Close it when done.
func NewSSH(cluster *SSHCluster) (*SSH, error) {
	key, err := os.ReadFile(cluster.Key)
	if err != nil {
		return nil, fmt.Errorf("chaos: ssh key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("chaos: ssh key %s: %w", cluster.Key, err)
	}
	hostKeys, err := knownhosts.New(cluster.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("chaos: known_hosts: %w", err)
	}
	timeout := cluster.Timeout.D()
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return &SSH{cluster: cluster, conns: map[string]*ssh.Client{},
		config: &ssh.ClientConfig{User: cluster.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: hostKeys, Timeout: timeout}}, nil
}

// Close closes every SSH connection.
func (d *SSH) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for h, c := range d.conns {
		c.Close()
		delete(d.conns, h)
	}
	return nil
}

// Kinds returns the kinds the cluster file has commands for, sorted.
func (d *SSH) Kinds() []Kind {
	out := slices.Collect(func(yield func(Kind) bool) {
		for k := range d.cluster.Faults {
			if !yield(k) {
				return
			}
		}
	})
	slices.Sort(out)
	return out
}

// Apply runs f's apply command for r: on each target's host for process and disk kinds, and
// on both ends of each cut pair for network kinds. Each command that ran is recorded with its
// undo command.
func (d *SSH) Apply(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved) error {
	cmds, ok := d.cluster.Faults[f.Kind]
	if !ok {
		return fmt.Errorf("chaos: the cluster file has no commands for %s", f.Kind)
	}
	type step struct {
		node int32
		vars map[string]string
	}
	if f.Target.Sel == SelClients {
		return fmt.Errorf("chaos: %s on clients: the ssh driver acts on brokers' hosts only", f.Kind)
	}
	params := templateParams(f)
	var steps []step
	if f.Kind.Class() == "network" {
		if r.Clients {
			return fmt.Errorf("chaos: %s: the ssh driver cannot cut clients off; use from: peers", f.Kind)
		}
		for _, p := range r.Pairs {
			for _, side := range [][2]int32{{p[0], p[1]}, {p[1], p[0]}} {
				peer, ok := d.cluster.Brokers[side[1]]
				if !ok {
					return fmt.Errorf("chaos: %s: broker %d is not in the cluster file", f.Kind, side[1])
				}
				steps = append(steps, step{side[0], map[string]string{"peer": peer.addr(), "peer_node": strconv.Itoa(int(side[1]))}})
			}
		}
	} else {
		for _, n := range r.Nodes {
			steps = append(steps, step{node: n, vars: map[string]string{}})
		}
	}
	for _, st := range steps {
		for k, v := range params {
			if _, set := st.vars[k]; !set {
				st.vars[k] = v
			}
		}
	}
	for _, s := range steps {
		h, ok := d.cluster.Brokers[s.node]
		if !ok {
			return fmt.Errorf("chaos: %s: broker %d is not in the cluster file", f.Kind, s.node)
		}
		apply, undo := h.expand(s.node, cmds.Apply, s.vars), h.expand(s.node, cmds.Undo, s.vars)
		if err := d.run(ctx, h.Host, apply); err != nil {
			return fmt.Errorf("chaos: %s on broker %d: %w", f.Kind, s.node, err)
		}
		if undo == "" {
			continue
		}
		rec := Record{Fault: id, Action: "ssh", Node: s.node, Host: h.Host, Cmdline: []string{apply}, Undo: undo}
		host := h.Host
		reg.Add(rec, func(ctx context.Context) error { return d.run(ctx, host, undo) })
	}
	return nil
}

func (h SSHHost) addr() string {
	if h.Addr != "" {
		return h.Addr
	}
	if host, _, err := net.SplitHostPort(h.Host); err == nil {
		return host
	}
	return h.Host
}

// expand fills a command template for broker node.
func (h SSHHost) expand(node int32, tmpl string, extra map[string]string) string {
	if tmpl == "" {
		return ""
	}
	pairs := []string{"{node}", strconv.Itoa(int(node)), "{host}", h.Host, "{addr}", h.addr()}
	for k, v := range h.Vars {
		pairs = append(pairs, "{"+k+"}", v)
	}
	for k, v := range extra {
		pairs = append(pairs, "{"+k+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

// run runs cmd on host and fails with its stderr when it exits non-zero.
func (d *SSH) run(ctx context.Context, host, cmd string) error {
	cl, err := d.client(host)
	if err != nil {
		return err
	}
	sess, err := cl.NewSession()
	if err != nil {
		d.drop(host, cl)
		return fmt.Errorf("chaos: ssh %s: %w", host, err)
	}
	defer sess.Close()
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	timer := time.NewTimer(d.config.Timeout)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("no answer within %s", d.config.Timeout)
	}
	if err != nil {
		return fmt.Errorf("chaos: ssh %s: %q: %w: %s", host, cmd, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (d *SSH) client(host string) (*ssh.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.conns[host]; c != nil {
		return c, nil
	}
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "22")
	}
	c, err := ssh.Dial("tcp", addr, d.config)
	if err != nil {
		return nil, fmt.Errorf("chaos: ssh %s: %w", host, err)
	}
	d.conns[host] = c
	return c, nil
}

func (d *SSH) drop(host string, c *ssh.Client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conns[host] == c {
		delete(d.conns, host)
	}
	c.Close()
}

// templateParams are the template values of fault f's params: each param's text (with the
// defaults of the clock kinds filled in), and for duration params NAME_s and NAME_ms.
func templateParams(f Fault) map[string]string {
	ps := maps.Clone(f.Params)
	if ps == nil {
		ps = map[string]string{}
	}
	switch f.Kind {
	case ClockSkew:
		ps["offset"] = f.paramSigned("offset", 30*time.Second).String()
	case ClockBump:
		ps["delta"] = f.paramSigned("delta", time.Minute).String()
	case ClockStrobe:
		ps["delta"] = f.paramSigned("delta", 10*time.Second).String()
		ps["period"] = f.paramDuration("period", 100*time.Millisecond).String()
	}
	for k, v := range maps.Clone(ps) {
		if d, err := parseSignedDuration(v); err == nil && strings.ContainsAny(v, "hmsuµn") {
			ps[k+"_s"] = strconv.FormatInt(int64(d/time.Second), 10)
			ps[k+"_ms"] = strconv.FormatInt(d.Milliseconds(), 10)
		}
	}
	return ps
}
