package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/chaos/proxy"
	"github.com/kchaos/kchaos/workloads"
)

// Driver makes faults happen. Apply makes fault instance id of kind f.Kind act on r, and
// records in reg every change it made with its undo, so ending the fault is
// reg.UndoFault(id) and healing is reg.Heal.
type Driver interface {
	// Kinds are the kinds the driver can do.
	Kinds() []Kind
	Apply(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved) error
}

// Process is a broker process the local driver acts on; *local.Node is one.
type Process interface {
	Kill() error
	Stop() error
	Pause() error
	Resume() error
	Restart(ctx context.Context) error
	Pid() int
	Running() bool
}

var _ Process = (*local.Node)(nil)

// Local is the driver for a local cluster: process faults on the launcher's broker processes
// and network faults in the link proxies of Net. It needs no root.
type Local struct {
	// Nodes are the brokers by id; nil disables process faults.
	Nodes map[int32]Process
	// Net holds the link proxies; nil disables network faults.
	Net *Net
	// DataDirs are the brokers' data directories by id, for disk faults; a Node that is a
	// *local.Node needs no entry. Disk faults need Nodes and brokers started with disk
	// faults enabled (the default of `kchaos broker`). Clock faults need the same, with
	// clock faults enabled.
	DataDirs map[int32]string
	// AddNode, when set, starts a new broker that joins the cluster (add-broker).
	AddNode AddNodeFunc

	clocks clockModes
}

var _ Driver = (*Local)(nil)

// Kinds returns the process, disk, clock and resource kinds when Nodes is set (memory-pressure
// only where cgroups allow) and the network kinds when Net is.
func (d *Local) Kinds() []Kind {
	var out []Kind
	for _, k := range Kinds() {
		switch k.Class() {
		case "process", "disk", "clock":
			if d.Nodes != nil {
				out = append(out, k)
			}
		case "resource":
			if d.Nodes != nil && (k != MemoryPressure || CgroupsAvailable("memory") == nil) {
				out = append(out, k)
			}
		case "network":
			if d.Net != nil {
				out = append(out, k)
			}
		}
	}
	return out
}

// Missing says why memory-pressure is missing when there is no memory cgroup to make.
func (d *Local) Missing() map[Kind]string {
	if err := CgroupsAvailable("memory"); err != nil {
		return map[Kind]string{MemoryPressure: err.Error()}
	}
	return nil
}

// Apply does f to r.
func (d *Local) Apply(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved) error {
	each := func(fn func(node int32) error) error {
		for _, n := range r.Nodes {
			if err := fn(n); err != nil {
				return err
			}
		}
		return nil
	}
	switch c := f.Kind.Class(); {
	case c == "clock" && f.Target.Sel == SelClients:
		return d.clientClock(reg, id, f, r)
	case c == "network" && d.Net != nil:
		return d.network(reg, id, f, r)
	case d.Nodes == nil:
	case c == "process":
		return each(func(n int32) error { return d.process(ctx, reg, id, f.Kind, n) })
	case c == "disk":
		return each(func(n int32) error { return d.disk(ctx, reg, id, f, n) })
	case c == "clock":
		return each(func(n int32) error { return d.clockFault(ctx, reg, id, f, n) })
	case c == "resource":
		return each(func(n int32) error { return d.resource(ctx, reg, id, f, n) })
	}
	return fmt.Errorf("chaos: the local driver cannot do %s", f.Kind)
}

// processRecord describes node's current process for the journal.
func processRecord(id int64, action string, node int32, p Process) Record {
	rec := Record{Fault: id, Action: action, Node: node, Pid: p.Pid()}
	if rec.Pid > 0 {
		if pi, err := readProc(rec.Pid); err == nil {
			rec.PidStart, rec.Cmdline = pi.Start, pi.Cmdline
		}
	}
	return rec
}

func (d *Local) process(ctx context.Context, reg *Registry, id int64, k Kind, node int32) error {
	p, ok := d.Nodes[node]
	if !ok {
		return fmt.Errorf("chaos: %s: broker %d is not in this local cluster", k, node)
	}
	restart := func(ctx context.Context) error {
		if p.Running() {
			return nil
		}
		return p.Restart(ctx)
	}
	switch k {
	case Kill, Stop, Restart:
		action := "kill"
		if k != Kill {
			action = "stop"
		}
		rec := processRecord(id, action, node, p)
		rec.Undo = "restart"
		var err error
		if k == Kill {
			err = p.Kill()
		} else {
			err = p.Stop()
		}
		if err != nil && p.Running() {
			return fmt.Errorf("chaos: %s broker %d: %w", action, node, err)
		}
		seq := reg.Add(rec, restart)
		if k == Restart {
			return reg.Undo(ctx, seq)
		}
		return nil
	case Pause:
		rec := processRecord(id, "pause", node, p)
		rec.Undo = "resume"
		if err := p.Pause(); err != nil {
			return fmt.Errorf("chaos: pause broker %d: %w", node, err)
		}
		reg.Add(rec, func(context.Context) error {
			if !p.Running() {
				return nil
			}
			return p.Resume()
		})
		return nil
	}
	return fmt.Errorf("chaos: the local driver cannot do %s", k)
}

// impairment turns a network fault's params into what its proxies do.
func impairment(f Fault) proxy.Impairment {
	switch f.Kind {
	case Latency:
		return proxy.Impairment{Latency: f.paramDuration("delay", 0), Jitter: f.paramDuration("jitter", 0)}
	case Loss:
		rate, _ := parseRate(f.param("rate", "0"))
		return proxy.Impairment{Loss: rate, RTO: f.paramDuration("rto", 0)}
	case Bandwidth:
		s, _ := workloads.ParseSize(f.param("rate", "0"))
		return proxy.Impairment{Bandwidth: int64(s)}
	case DropResponses:
		rate, _ := parseRate(f.param("rate", "1"))
		return proxy.Impairment{DropResponses: rate}
	case Corrupt:
		where := f.param("where", "batches")
		return proxy.Impairment{Corrupt: f.paramRate("rate", 0.05), CorruptAnywhere: where == "anywhere", CorruptProduceOnly: where == "produce"}
	case Duplicate:
		return proxy.Impairment{Duplicate: f.paramRate("rate", 0.5)}
	case Reorder:
		return proxy.Impairment{Reorder: f.paramRate("rate", 0.5), ReorderWindow: f.paramDuration("window", 20*time.Millisecond)}
	}
	return proxy.Impairment{Cut: true, Reset: f.param("mode", "blackhole") == "reset"}
}

// linkMatcher returns which links fault f resolved to r touches.
func linkMatcher(f Fault, r Resolved) func(LinkID) bool {
	switch f.Kind {
	case DropResponses, Duplicate, Reorder:
		return func(l LinkID) bool { return l.Plane == PlaneClient && slices.Contains(r.Nodes, l.To) }
	case Latency, Loss, Bandwidth, Corrupt:
		which := f.param("links", "both")
		if r.Clients && f.Target.Sel == SelClients {
			which = "clients"
		}
		return func(l LinkID) bool {
			if l.Plane == PlaneClient {
				return which != "peers" && slices.Contains(r.Nodes, l.To)
			}
			if f.Kind == Corrupt && l.Plane == PlaneRaft {
				// The Raft transport carries no checksum of its own: corrupting it would
				// corrupt the quorum's log, which TCP's checksum protects in real life.
				return false
			}
			return which != "clients" && (slices.Contains(r.Nodes, l.From) || slices.Contains(r.Nodes, l.To))
		}
	}
	return func(l LinkID) bool {
		if l.Plane == PlaneClient {
			return r.Clients && slices.Contains(r.Nodes, l.To)
		}
		return slices.Contains(r.Pairs, orderPair(l.From, l.To))
	}
}

func (d *Local) network(reg *Registry, id int64, f Fault, r Resolved) error {
	key := "fault-" + strconv.FormatInt(id, 10)
	links := d.Net.Impair(key, linkMatcher(f, r), impairment(f))
	if len(links) == 0 {
		return fmt.Errorf("chaos: %s on %v: no proxied link to impair (is the cluster behind link proxies?)", f.Kind, r.Nodes)
	}
	return d.recordImpair(reg, id, key, links)
}

// recordImpair journals links impaired under key by fault id, undone by clearing them.
func (d *Local) recordImpair(reg *Registry, id int64, key string, links []LinkID) error {
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.String()
	}
	reg.Add(Record{Fault: id, Action: "impair", Links: names, Undo: "clear"}, func(context.Context) error {
		d.Net.Clear(key, links)
		return nil
	})
	return nil
}

// ConsumerFault is a consumer fault as the harness's load generator takes it.
type ConsumerFault struct {
	// Consumer is the consumer's index (consumer(N)).
	Consumer int
	// Kind is CrashConsumer, RestartConsumer or StallConsumer.
	Kind Kind
	// For is the restart delay (crash-consumer's "delay", restart-consumer's duration) or the
	// stall's length.
	For time.Duration
}

// WithConsumers returns a driver that does what inner does plus the consumer fault kinds,
// handing each to deliver (the load generator). deliver must not block.
func WithConsumers(inner Driver, deliver func(ConsumerFault) error) Driver {
	return &consumerDriver{inner: inner, deliver: deliver}
}

type consumerDriver struct {
	inner   Driver
	deliver func(ConsumerFault) error
}

func (d *consumerDriver) Kinds() []Kind {
	var out []Kind
	if d.inner != nil {
		out = append(out, d.inner.Kinds()...)
	}
	return append(out, CrashConsumer, RestartConsumer, StallConsumer)
}

func (d *consumerDriver) Apply(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved) error {
	if f.Kind.Class() != "consumer" {
		if d.inner == nil {
			return fmt.Errorf("chaos: %s: no driver for broker faults", f.Kind)
		}
		return d.inner.Apply(ctx, reg, id, f, r)
	}
	cf := ConsumerFault{Consumer: int(f.Target.Broker), Kind: f.Kind, For: time.Duration(f.For)}
	if f.Kind == CrashConsumer {
		cf.For = f.paramDuration("delay", 0)
	}
	if err := d.deliver(cf); err != nil {
		return err
	}
	// Recorded so the journal lists every action; the fault ends by itself in the harness.
	reg.Add(Record{Fault: id, Action: "consumer-fault", Node: f.Target.Broker}, nil)
	return nil
}
