package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// NetnsPrefix starts the name of every network namespace, link, nftables table, tmpfs mount
// source and disk filler the netns driver creates; heal touches nothing without it.
const NetnsPrefix = "kchaos-"

// FabricJournalDir is the folder of a run directory holding the fabric's journal (its own
// chaos-actions.jsonl, so `kchaos chaos heal RUNDIR` finds it and heals it after the faults).
const FabricJournalDir = "netns"

// Fabric is the network of a netns cluster: every broker in a network namespace of its own
// (kchaos-RUN-bN) with address 10.X.Y.(10+N)/24 on eth0, joined by a veth pair to a bridge
// (kchaos-RUN-br) in the root namespace that holds 10.X.Y.1, the address clients come from.
// Each namespace, link and mount is journalled before it is created, and Close removes them
// all. Its methods are safe for concurrent use.
type Fabric struct {
	// RunID is 4 hex digits naming this fabric's objects.
	RunID string
	// Bridge is the root-namespace bridge; HostAddr its address, which clients use.
	Bridge   string
	HostAddr netip.Addr

	reg      *Registry
	netemErr error // nil: the kernel has the netem qdisc
	htbErr   error // nil: the kernel has the htb qdisc
	nfqErr   error // nil: the kernel has nfnetlink_queue (the userspace netem, nfqueue.go)

	mu    sync.Mutex // guards nodes
	nodes map[int32]*fabricNode
}

type fabricNode struct {
	ns, veth string
	addr     netip.Addr
	mount    string // tmpfs data directory, "" when none
}

// NetnsAvailable returns nil when this process can build a fabric: root, the ip and tc
// tools, and network namespaces; else an error saying what is missing.
func NetnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("chaos: the netns driver needs root")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("chaos: the netns driver needs the %s tool (iproute2): %w", tool, err)
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("chaos: the netns driver needs network namespaces: %w", err)
	}
	return nil
}

// NewFabric builds the fabric of brokers 1..n and journals it in dir/netns ("" keeps the
// journal in memory). It probes nf_tables (required) and the htb and netem qdiscs (optional:
// the degradation kinds they serve are left out without them). On error it removes whatever
// it built.
func NewFabric(ctx context.Context, dir string, n int) (*Fabric, error) {
	if err := NetnsAvailable(); err != nil {
		return nil, err
	}
	if n < 1 || n > 200 {
		return nil, fmt.Errorf("chaos: fabric of %d brokers; want 1 to 200", n)
	}
	jdir := ""
	if dir != "" {
		jdir = filepath.Join(dir, FabricJournalDir)
		if err := os.MkdirAll(jdir, 0o755); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
	}
	reg, err := NewRegistry(jdir)
	if err != nil {
		return nil, err
	}
	f := &Fabric{reg: reg, nodes: map[int32]*fabricNode{}}
	if err := f.build(ctx, n); err != nil {
		return nil, errors.Join(err, f.Close(context.WithoutCancel(ctx)))
	}
	return f, nil
}

// build picks names and a subnet nobody uses and creates the bridge and the namespaces.
func (f *Fabric) build(ctx context.Context, n int) error {
	var b [4]byte
	for attempt := 0; ; attempt++ {
		rand.Read(b[:])
		f.RunID = hex.EncodeToString(b[:2])
		_, nsErr := os.Stat("/var/run/netns/" + NetnsPrefix + f.RunID + "-b1")
		_, linkErr := net.InterfaceByName(NetnsPrefix + f.RunID + "-br")
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100 + b[2]%150, b[3], 0}), 24)
		if nsErr != nil && linkErr != nil && !subnetInUse(subnet) {
			f.HostAddr = subnet.Addr().Next()
			break
		}
		if attempt == 20 {
			return errors.New("chaos: no free fabric name or subnet after 20 tries")
		}
	}
	f.Bridge = NetnsPrefix + f.RunID + "-br"
	if err := f.create(ctx, Record{Action: "link", Object: f.Bridge, Undo: "delete"},
		[]string{"ip", "link", "add", f.Bridge, "type", "bridge"},
		[]string{"ip", "addr", "add", f.HostAddr.String() + "/24", "dev", f.Bridge},
		[]string{"ip", "link", "set", f.Bridge, "up"}); err != nil {
		return err
	}
	for id := int32(1); id <= int32(n); id++ {
		if err := f.addNode(ctx, id); err != nil {
			return err
		}
	}
	if err := f.probeNftables(ctx); err != nil {
		return err
	}
	veth := f.nodes[1].veth
	f.netemErr = f.probeQdisc(ctx, veth, "netem", "delay", "1ms")
	f.htbErr = f.probeQdisc(ctx, veth, "htb", "default", "10")
	if q, err := openNFQueue(f.nodes[1].ns, 65000, netemSpec{}, 0); err != nil {
		f.nfqErr = err
	} else {
		q.Close()
	}
	return nil
}

// subnetInUse reports whether any local interface has an address in p or a route other than
// the default one overlaps it (/proc/net/route).
func subnetInUse(p netip.Prefix) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ad, ok := netip.AddrFromSlice(ipn.IP); ok && p.Contains(ad.Unmap()) {
				return true
			}
		}
	}
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		mask, err2 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue
		}
		// The kernel prints both in host (little-endian) byte order.
		d := netip.AddrFrom4([4]byte{byte(dst), byte(dst >> 8), byte(dst >> 16), byte(dst >> 24)})
		bits := 0
		for m := uint32(mask); m != 0; m >>= 1 {
			bits += int(m & 1)
		}
		if netip.PrefixFrom(d, bits).Overlaps(p) {
			return true
		}
	}
	return false
}

// addNode creates broker id's namespace and its veth pair to the bridge.
func (f *Fabric) addNode(ctx context.Context, id int32) error {
	s := strconv.Itoa(int(id))
	nd := &fabricNode{ns: NetnsPrefix + f.RunID + "-b" + s, veth: NetnsPrefix + f.RunID + "-" + s,
		addr: netip.AddrFrom4([4]byte{f.HostAddr.As4()[0], f.HostAddr.As4()[1], f.HostAddr.As4()[2], byte(10 + id)})}
	if id > 240 {
		return fmt.Errorf("chaos: broker id %d does not fit the fabric's /24", id)
	}
	f.mu.Lock()
	f.nodes[id] = nd
	f.mu.Unlock()
	if err := f.create(ctx, Record{Action: "netns", Node: id, Netns: nd.ns, Undo: "delete"},
		[]string{"ip", "netns", "add", nd.ns},
		[]string{"ip", "-n", nd.ns, "link", "set", "lo", "up"}); err != nil {
		return err
	}
	return f.create(ctx, Record{Action: "link", Node: id, Object: nd.veth, Undo: "delete"},
		[]string{"ip", "link", "add", nd.veth, "type", "veth", "peer", "name", "eth0", "netns", nd.ns},
		[]string{"ip", "link", "set", nd.veth, "master", f.Bridge, "up"},
		[]string{"ip", "-n", nd.ns, "addr", "add", nd.addr.String() + "/24", "dev", "eth0"},
		[]string{"ip", "-n", nd.ns, "link", "set", "eth0", "up"})
}

// create journals rec, then runs cmds, the first of which creates rec's object. When that
// object already exists it is someone else's (another fabric that drew the same name at the
// same moment): rec is forgotten, not undone, so Close leaves it alone.
func (f *Fabric) create(ctx context.Context, rec Record, cmds ...[]string) error {
	seq := f.reg.Add(rec, undoNetnsFunc(rec))
	if err := netnsRun(ctx, cmds[0]...); err != nil {
		if strings.Contains(err.Error(), "exists") {
			f.reg.Forget(seq)
		}
		return err
	}
	return netnsRunAll(ctx, cmds[1:]...)
}

// probeQdisc adds and removes qdisc kind on dev, and returns why it cannot be used.
func (f *Fabric) probeQdisc(ctx context.Context, dev, kind string, args ...string) error {
	rec := Record{Action: "qdisc", Object: dev, Undo: "delete"}
	seq := f.reg.Add(rec, undoNetnsFunc(rec))
	err := netnsRun(ctx, append([]string{"tc", "qdisc", "add", "dev", dev, "root", kind}, args...)...)
	uerr := f.reg.Undo(ctx, seq)
	if err != nil {
		return fmt.Errorf("chaos: the kernel lacks the %s qdisc (%w)", kind, err)
	}
	return uerr
}

// Place is local.Config.Place for this fabric: broker id's address and the ip netns exec
// prefix that runs it in its namespace.
func (f *Fabric) Place(id int32) (string, []string) {
	nd := f.node(id)
	if nd == nil {
		return "", nil
	}
	return nd.addr.String(), []string{"ip", "netns", "exec", nd.ns}
}

// mountOf returns broker id's tmpfs data directory ("" when none).
func (f *Fabric) mountOf(id int32) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if nd := f.nodes[id]; nd != nil {
		return nd.mount
	}
	return ""
}

func (f *Fabric) node(id int32) *fabricNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[id]
}

// Addr returns broker id's address (invalid when id has no namespace).
func (f *Fabric) Addr(id int32) netip.Addr {
	if nd := f.node(id); nd != nil {
		return nd.addr
	}
	return netip.Addr{}
}

// Namespace returns broker id's network namespace name ("" when none).
func (f *Fabric) Namespace(id int32) string {
	if nd := f.node(id); nd != nil {
		return nd.ns
	}
	return ""
}

// MountData mounts a tmpfs of size bytes on dir, broker id's data directory, so that a full
// disk is a real ENOSPC. Mount before the broker starts; Close unmounts after it stopped.
func (f *Fabric) MountData(id int32, dir string, size int64) error {
	nd := f.node(id)
	if nd == nil {
		return fmt.Errorf("chaos: broker %d has no namespace in fabric %s", id, f.RunID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	rec := Record{Action: "mount", Node: id, Path: abs, Object: NetnsPrefix + f.RunID, Undo: "unmount"}
	f.reg.Add(rec, undoNetnsFunc(rec))
	if err := unix.Mount(rec.Object, abs, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatInt(size, 10)+",mode=0755"); err != nil {
		return fmt.Errorf("chaos: mount tmpfs on %s: %w", abs, err)
	}
	f.mu.Lock()
	nd.mount = abs
	f.mu.Unlock()
	return nil
}

// Close removes everything the fabric made, newest first (mounts, links, namespaces, the
// bridge). Stop the brokers first: a mount still in use is detached, not freed, until they
// exit.
func (f *Fabric) Close(ctx context.Context) error {
	return errors.Join(f.reg.Heal(ctx), f.reg.Close())
}

// Pending returns the fabric's changes not undone yet.
func (f *Fabric) Pending() []Record { return f.reg.Pending() }

// netnsRun runs one command and returns its output in the error when it fails.
func netnsRun(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// netnsRunAll runs cmds in order and stops at the first failure.
func netnsRunAll(ctx context.Context, cmds ...[]string) error {
	for _, c := range cmds {
		if err := netnsRun(ctx, c...); err != nil {
			return err
		}
	}
	return nil
}

// netnsGone reports whether err says the object to remove is not there.
func netnsGone(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	for _, m := range []string{"Cannot find device", "No such file or directory", "does not exist", "Invalid handle", "handle of zero", "Cannot open network namespace"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT)
}

func undoNetnsFunc(rec Record) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := undoNetns(ctx, rec)
		return err
	}
}

// isNetnsAction reports whether action is one undoNetns handles.
func isNetnsAction(action string) bool {
	switch action {
	case "netns", "link", "mount", "nft-table", "qdisc", "fill":
		return true
	}
	return false
}

// undoNetns removes what rec recorded, if it is still there and carries the kchaos- prefix,
// and says what it did. It is both the in-process undo and the one `kchaos chaos heal` runs.
func undoNetns(ctx context.Context, rec Record) (string, error) {
	owned := func(name string) error {
		if !strings.HasPrefix(name, NetnsPrefix) {
			return fmt.Errorf("chaos: journal change %d: %q has no %s prefix; not touched", rec.Seq, name, NetnsPrefix)
		}
		return nil
	}
	switch rec.Action {
	case "netns":
		if err := owned(rec.Netns); err != nil {
			return "", err
		}
		if err := netnsRun(ctx, "ip", "netns", "delete", rec.Netns); err != nil && !netnsGone(err) {
			return "", err
		}
		return "deleted network namespace " + rec.Netns, nil
	case "link":
		if err := owned(rec.Object); err != nil {
			return "", err
		}
		if err := netnsRun(ctx, "ip", "link", "delete", rec.Object); err != nil && !netnsGone(err) {
			return "", err
		}
		return "deleted link " + rec.Object, nil
	case "qdisc":
		argv := []string{"tc"}
		if rec.Netns != "" {
			if err := owned(rec.Netns); err != nil {
				return "", err
			}
			argv = append(argv, "-n", rec.Netns)
		} else if err := owned(rec.Object); err != nil {
			return "", err
		}
		if err := netnsRun(ctx, append(argv, "qdisc", "del", "dev", rec.Object, "root")...); err != nil && !netnsGone(err) {
			return "", err
		}
		return "deleted the root qdisc of " + rec.Object + " " + rec.Netns, nil
	case "nft-table":
		if err := errors.Join(owned(rec.Netns), owned(rec.Object)); err != nil {
			return "", err
		}
		if err := deleteTable(rec.Netns, rec.Object); err != nil && !netnsGone(err) {
			return "", err
		}
		return "deleted nftables table " + rec.Object + " in " + rec.Netns, nil
	case "fill":
		if err := owned(filepath.Base(rec.Path)[1:]); err != nil || !strings.HasPrefix(filepath.Base(rec.Path), ".") {
			return "", fmt.Errorf("chaos: journal change %d: %q is not a disk filler; not touched", rec.Seq, rec.Path)
		}
		if err := os.Remove(rec.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("chaos: %w", err)
		}
		return "removed disk filler " + rec.Path, nil
	case "mount":
		if err := owned(rec.Object); err != nil {
			return "", err
		}
		if !mountedAt(rec.Object, rec.Path) {
			return "tmpfs " + rec.Path + " is not mounted; nothing to do", nil
		}
		if err := unix.Unmount(rec.Path, 0); err != nil {
			if err := unix.Unmount(rec.Path, unix.MNT_DETACH); err != nil {
				return "", fmt.Errorf("chaos: unmount %s: %w", rec.Path, err)
			}
			return "detached tmpfs " + rec.Path + " (still in use)", nil
		}
		return "unmounted tmpfs " + rec.Path, nil
	}
	return "", fmt.Errorf("chaos: journal change %d: unknown action %q", rec.Seq, rec.Action)
}

// mountedAt reports whether /proc/mounts has a mount of source at path.
func mountedAt(source, path string) bool {
	for _, m := range kchaosMounts() {
		if m[0] == source && m[1] == path {
			return true
		}
	}
	return false
}

// kchaosMounts returns the source and mount point of every mount whose source has the
// kchaos- prefix.
func kchaosMounts() [][2]string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return nil
	}
	var out [][2]string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[0], NetnsPrefix) {
			out = append(out, [2]string{f[0], unescapeMount(f[1])})
		}
	}
	return out
}

// unescapeMount undoes /proc/mounts' octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
