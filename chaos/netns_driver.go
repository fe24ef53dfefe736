package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/kchaos/kchaos/workloads"
)

// Netns is the driver for a local cluster whose brokers run in the network namespaces of a
// Fabric (root on Linux). Network cuts are nftables rules in the brokers' namespaces that
// drop packets, so they act on real packets with the same meaning as the local driver's
// proxies: a cut pair exchanges no packet, a broker cut from clients exchanges none with the
// fabric's host address. Degradation is an htb qdisc on both ends of each target's veth pair
// whose filters send the chosen links' packets (by the fabric's addresses) to a class limited
// to the bandwidth, or holding a netem qdisc for latency and loss, when the kernel has htb and
// netem; without netem, latency and loss run in this process, on the real packets, through
// NFQUEUE (nfqueue.go). Disk-full fills the broker's tmpfs data directory (Fabric.MountData) until writes
// fail with a real ENOSPC. Process faults, disk-slow and lose-unsynced act as in the Local
// driver.
type Netns struct {
	Fabric *Fabric
	// Local does the process faults, disk-slow and lose-unsynced; its Net is not used.
	Local *Local
}

var _ Driver = (*Netns)(nil)

// Kinds returns the process and disk kinds when Local has Nodes, the cut kinds, and the
// degradation kinds whose qdiscs the kernel has (bandwidth: htb; latency and loss: htb and
// netem).
func (d *Netns) Kinds() []Kind {
	var out []Kind
	for _, k := range Kinds() {
		switch k.Class() {
		case "process", "disk", "clock", "resource":
			if d.Local != nil && d.Local.Nodes != nil && (k != MemoryPressure || CgroupsAvailable("memory") == nil) {
				out = append(out, k)
			}
		case "network":
			if d.qdiscErr(k) == nil && !slices.Contains(frameKinds, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// Missing says why each network kind the driver cannot do is missing (the qdisc the kernel
// lacks); the scheduler puts it in its error.
func (d *Netns) Missing() map[Kind]string {
	out := map[Kind]string{}
	for _, k := range []Kind{Latency, Loss, Bandwidth} {
		if err := d.qdiscErr(k); err != nil {
			out[k] = err.Error()
		}
	}
	for _, k := range frameKinds {
		out[k] = "the netns driver's links carry real packets and no Kafka-aware proxy; use the local driver for " + string(k)
	}
	return out
}

// frameKinds are the kinds the link proxies do by reading Kafka frames.
var frameKinds = []Kind{Corrupt, Duplicate, Reorder}

// qdiscErr says why degradation kind k cannot be done (nil for cut kinds).
func (d *Netns) qdiscErr(k Kind) error {
	var err error
	switch k {
	case Latency, Loss:
		err = errors.Join(d.Fabric.htbErr, d.Fabric.netemErr)
		if err != nil && d.Fabric.nfqErr == nil {
			return nil // the userspace netem does it
		}
		err = errors.Join(err, d.Fabric.nfqErr)
	case Bandwidth:
		err = d.Fabric.htbErr
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("chaos: the netns driver cannot do %s: %w", k, err)
	}
	return nil
}

// Apply does f to r.
func (d *Netns) Apply(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved) error {
	switch f.Kind.Class() {
	case "process", "clock", "resource":
		if d.Local != nil {
			return d.Local.Apply(ctx, reg, id, f, r)
		}
	case "network":
		if slices.Contains(frameKinds, f.Kind) {
			break
		}
		if err := d.qdiscErr(f.Kind); err != nil {
			return err
		}
		switch f.Kind {
		case Latency, Loss:
			if errors.Join(d.Fabric.htbErr, d.Fabric.netemErr) != nil {
				return d.userspaceNetem(reg, id, f, r)
			}
			return d.degrade(ctx, reg, id, f, r)
		case Bandwidth:
			return d.degrade(ctx, reg, id, f, r)
		}
		return d.cut(reg, id, f, r)
	case "disk":
		if d.Local == nil {
			break
		}
		if f.Kind != DiskFull {
			return d.Local.Apply(ctx, reg, id, f, r)
		}
		for _, n := range r.Nodes {
			if err := d.fill(reg, id, n); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("chaos: the netns driver cannot do %s", f.Kind)
}

// cut adds, per namespace, a table named kchaos-RUN-fID that drops the packets the fault cuts.
func (d *Netns) cut(reg *Registry, id int64, f Fault, r Resolved) error {
	peers := map[int32][]netip.Addr{}
	add := func(node int32, addr netip.Addr) error {
		if !addr.IsValid() || d.Fabric.Namespace(node) == "" {
			return fmt.Errorf("chaos: %s: broker %d has no namespace in fabric %s", f.Kind, node, d.Fabric.RunID)
		}
		if !slices.Contains(peers[node], addr) {
			peers[node] = append(peers[node], addr)
		}
		return nil
	}
	for _, p := range r.Pairs {
		if err := add(p[0], d.Fabric.Addr(p[1])); err != nil {
			return err
		}
	}
	if r.Clients {
		for _, n := range r.Nodes {
			if err := add(n, d.Fabric.HostAddr); err != nil {
				return err
			}
		}
	}
	if len(peers) == 0 {
		return fmt.Errorf("chaos: %s on %v: nothing to cut", f.Kind, r.Nodes)
	}
	reset := f.param("mode", "blackhole") == "reset"
	table := NetnsPrefix + d.Fabric.RunID + "-f" + strconv.FormatInt(id, 10)
	for _, node := range slices.Sorted(maps.Keys(peers)) {
		ns := d.Fabric.Namespace(node)
		rec := Record{Fault: id, Action: "nft-table", Node: node, Netns: ns, Object: table, Undo: "delete"}
		for _, a := range peers[node] {
			rec.Links = append(rec.Links, a.String())
		}
		reg.Add(rec, undoNetnsFunc(rec))
		if err := addCutTable(ns, table, peers[node], reset); err != nil {
			return err
		}
	}
	return nil
}

// degrade builds, on both ends of each target's veth pair (the host end carries what the
// broker receives, its eth0 what it sends), a root htb qdisc with an open class 1:10 and a
// degraded class 1:20: limited to the rate for bandwidth, holding a netem qdisc for latency
// and loss. Param links picks what goes to 1:20: everything (both), packets from or to the
// fabric's host address (clients), or from or to another broker (peers). A device holds one
// root qdisc, so a second degradation of a broker while one lasts fails.
func (d *Netns) degrade(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved) error {
	which := f.param("links", "both")
	rate := "10gbit"
	var netem []string
	switch f.Kind {
	case Latency:
		netem = []string{"delay", durUs(f.paramDuration("delay", 0))}
		if j := f.paramDuration("jitter", 0); j > 0 {
			netem = append(netem, durUs(j), "distribution", "uniform")
		}
	case Loss:
		p, _ := parseRate(f.param("rate", "0"))
		netem = []string{"loss", strconv.FormatFloat(p*100, 'f', -1, 64) + "%"}
	case Bandwidth:
		s, _ := workloads.ParseSize(f.param("rate", "0"))
		// tc's "bps" is bytes per second.
		rate = strconv.FormatInt(int64(s), 10) + "bps"
	}
	host := d.Fabric.HostAddr.String() + "/32"
	subnet := netip.PrefixFrom(d.Fabric.HostAddr, 24).Masked().String()
	for _, n := range r.Nodes {
		nd := d.Fabric.node(n)
		if nd == nil {
			return fmt.Errorf("chaos: %s: broker %d has no namespace in fabric %s", f.Kind, n, d.Fabric.RunID)
		}
		for _, end := range []struct{ ns, dev, dir string }{{"", nd.veth, "src"}, {nd.ns, "eth0", "dst"}} {
			tc := func(args ...string) []string {
				if end.ns != "" {
					return append([]string{"tc", "-n", end.ns}, args...)
				}
				return append([]string{"tc"}, args...)
			}
			def := "20"
			var filters [][]string
			filter := func(prio, addr, class string) []string {
				return tc("filter", "add", "dev", end.dev, "parent", "1:", "protocol", "ip", "prio", prio, "u32",
					"match", "ip", end.dir, addr, "flowid", "1:"+class)
			}
			switch which {
			case "clients":
				def = "10"
				filters = append(filters, filter("1", host, "20"))
			case "peers":
				def = "10"
				filters = append(filters, filter("1", host, "10"), filter("2", subnet, "20"))
			}
			cmds := [][]string{
				tc("qdisc", "add", "dev", end.dev, "root", "handle", "1:", "htb", "default", def),
				tc("class", "add", "dev", end.dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit"),
				tc("class", "add", "dev", end.dev, "parent", "1:", "classid", "1:20", "htb", "rate", rate, "ceil", rate),
			}
			if netem != nil {
				cmds = append(cmds, tc(append([]string{"qdisc", "add", "dev", end.dev, "parent", "1:20", "handle", "20:", "netem"}, netem...)...))
			}
			cmds = append(cmds, filters...)
			// Journalled after the root qdisc is added: a failed add must not undo another
			// fault's qdisc, and a qdisc a crash leaves unjournalled goes with its link when
			// the fabric is removed.
			if err := netnsRun(ctx, cmds[0]...); err != nil {
				return fmt.Errorf("chaos: %s broker %d: %w", f.Kind, n, err)
			}
			rec := Record{Fault: id, Action: "qdisc", Node: n, Netns: end.ns, Object: end.dev, Undo: "delete"}
			reg.Add(rec, undoNetnsFunc(rec))
			if err := netnsRunAll(ctx, cmds[1:]...); err != nil {
				return fmt.Errorf("chaos: %s broker %d: %w", f.Kind, n, err)
			}
		}
	}
	return nil
}

// durUs renders d for tc in microseconds ("1500us").
func durUs(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + "us" }

// fill writes a hidden filler file into broker node's tmpfs data directory until the tmpfs
// is full, so the broker's next write fails with ENOSPC; removing the file ends the fault.
func (d *Netns) fill(reg *Registry, id int64, node int32) error {
	mount := d.Fabric.mountOf(node)
	if mount == "" {
		return fmt.Errorf("chaos: disk-full: broker %d has no tmpfs data directory (Fabric.MountData)", node)
	}
	path := filepath.Join(mount, "."+NetnsPrefix+"fill-"+strconv.FormatInt(id, 10))
	rec := Record{Fault: id, Action: "fill", Node: node, Path: path, Undo: "remove"}
	reg.Add(rec, undoNetnsFunc(rec))
	fl, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("chaos: disk-full broker %d: %w", node, err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err = fl.Write(buf); err != nil {
			break
		}
	}
	cerr := fl.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("chaos: disk-full broker %d: filling %s: %w", node, path, errors.Join(err, cerr))
	}
	return nil
}

// userspaceNetem delays or drops the chosen links' packets of each target in this process
// (nfqueue.go), for kernels without netem: a queue per target broker and fault, and a table
// in the broker's namespace that sends its eth0 packets (both directions) there.
func (d *Netns) userspaceNetem(reg *Registry, id int64, f Fault, r Resolved) error {
	spec := netemSpec{Delay: f.paramDuration("delay", 0), Jitter: f.paramDuration("jitter", 0)}
	if f.Kind == Loss {
		spec.Loss, _ = parseRate(f.param("rate", "0"))
	}
	subnet := netip.PrefixFrom(d.Fabric.HostAddr, 24).Masked()
	for _, n := range r.Nodes {
		ns := d.Fabric.Namespace(n)
		if ns == "" {
			return fmt.Errorf("chaos: %s: broker %d has no namespace in fabric %s", f.Kind, n, d.Fabric.RunID)
		}
		num := uint16(1 + (id*int64(len(d.Fabric.nodes)+1)+int64(n))%60000)
		q, err := openNFQueue(ns, num, spec, uint64(id))
		if err != nil {
			return fmt.Errorf("chaos: %s broker %d: %w", f.Kind, n, err)
		}
		reg.Add(Record{Fault: id, Action: "nfqueue", Node: n, Netns: ns, Object: strconv.Itoa(int(num)), Undo: "close"},
			func(context.Context) error { return q.Close() })
		table := NetnsPrefix + d.Fabric.RunID + "-q" + strconv.FormatInt(id, 10)
		rec := Record{Fault: id, Action: "nft-table", Node: n, Netns: ns, Object: table, Undo: "delete"}
		reg.Add(rec, undoNetnsFunc(rec))
		if err := addQueueTable(ns, table, num, f.param("links", "both"), d.Fabric.HostAddr, subnet); err != nil {
			return err
		}
	}
	return nil
}
