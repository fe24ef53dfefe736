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
// fabric's host address. Bandwidth is a tbf qdisc and latency and loss a netem qdisc on both
// ends of each target's veth pair, when the kernel has them. Disk-full fills the broker's
// tmpfs data directory (Fabric.MountData) until writes fail with a real ENOSPC. Process
// faults, disk-slow and lose-unsynced act as in the Local driver.
type Netns struct {
	Fabric *Fabric
	// Local does the process faults, disk-slow and lose-unsynced; its Net is not used.
	Local *Local
}

var _ Driver = (*Netns)(nil)

// Kinds returns the process and disk kinds when Local has Nodes, the cut kinds, and the
// degradation kinds whose qdisc the kernel has (bandwidth: tbf; latency and loss: netem).
func (d *Netns) Kinds() []Kind {
	var out []Kind
	for _, k := range Kinds() {
		switch k.Class() {
		case "process", "disk":
			if d.Local != nil && d.Local.Nodes != nil {
				out = append(out, k)
			}
		case "network":
			if d.qdiscErr(k) == nil {
				out = append(out, k)
			}
		}
	}
	return out
}

// qdiscErr says why degradation kind k cannot be done (nil for cut kinds).
func (d *Netns) qdiscErr(k Kind) error {
	var err error
	switch k {
	case Latency, Loss:
		err = d.Fabric.netemErr
	case Bandwidth:
		err = d.Fabric.tbfErr
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
	case "process":
		if d.Local != nil {
			return d.Local.Apply(ctx, reg, id, f, r)
		}
	case "network":
		if err := d.qdiscErr(f.Kind); err != nil {
			return err
		}
		switch f.Kind {
		case Latency, Loss, Bandwidth:
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

// degrade puts a root qdisc on both ends of each target's veth pair: the host end shapes what
// the broker receives, the eth0 end what it sends. A device holds one root qdisc, so two
// degradations of one broker at once are refused.
func (d *Netns) degrade(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved) error {
	if which := f.param("links", "both"); which != "both" {
		return fmt.Errorf("chaos: the netns driver degrades all of a broker's traffic; %s links=%s needs the local driver", f.Kind, which)
	}
	var qdisc []string
	switch f.Kind {
	case Latency:
		qdisc = []string{"netem", "delay", durMs(f.paramDuration("delay", 0))}
		if j := f.paramDuration("jitter", 0); j > 0 {
			qdisc = append(qdisc, durMs(j), "distribution", "uniform")
		}
	case Loss:
		rate, _ := parseRate(f.param("rate", "0"))
		qdisc = []string{"netem", "loss", strconv.FormatFloat(rate*100, 'f', -1, 64) + "%"}
	case Bandwidth:
		s, _ := workloads.ParseSize(f.param("rate", "0"))
		rate := int64(s)
		burst := max(rate/10, 32<<10)
		// tc's "bps" is bytes per second.
		qdisc = []string{"tbf", "rate", strconv.FormatInt(rate, 10) + "bps", "burst", strconv.FormatInt(burst, 10), "latency", "1s"}
	}
	for _, n := range r.Nodes {
		nd := d.Fabric.node(n)
		if nd == nil {
			return fmt.Errorf("chaos: %s: broker %d has no namespace in fabric %s", f.Kind, n, d.Fabric.RunID)
		}
		for _, end := range []Record{{Object: nd.veth}, {Object: "eth0", Netns: nd.ns}} {
			rec := Record{Fault: id, Action: "qdisc", Node: n, Netns: end.Netns, Object: end.Object, Undo: "delete"}
			argv := []string{"tc"}
			if end.Netns != "" {
				argv = append(argv, "-n", end.Netns)
			}
			argv = append(append(argv, "qdisc", "add", "dev", end.Object, "root"), qdisc...)
			// Journalled after the add: a failed add must not undo another fault's qdisc, and
			// a qdisc a crash leaves unjournalled goes with its link when the fabric is removed.
			if err := run(ctx, argv...); err != nil {
				return fmt.Errorf("chaos: %s broker %d: %w", f.Kind, n, err)
			}
			reg.Add(rec, undoNetnsFunc(rec))
		}
	}
	return nil
}

// durMs renders d for tc in microseconds ("1500us").
func durMs(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + "us" }

// fill writes a hidden filler file into broker node's tmpfs data directory until the tmpfs
// is full, so the broker's next write fails with ENOSPC; removing the file ends the fault.
func (d *Netns) fill(reg *Registry, id int64, node int32) error {
	nd := d.Fabric.node(node)
	if nd == nil || nd.mount == "" {
		return fmt.Errorf("chaos: disk-full: broker %d has no tmpfs data directory (Fabric.MountData)", node)
	}
	path := filepath.Join(nd.mount, "."+NetnsPrefix+"fill-"+strconv.FormatInt(id, 10))
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
