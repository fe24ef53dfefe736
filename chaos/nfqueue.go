package chaos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A userspace netem for the netns driver, for kernels without the netem qdisc: an nftables
// table in the broker's namespace queues the chosen links' packets (NFQUEUE, with bypass, so a
// queue nobody listens to lets packets through) and this process holds each one for the delay
// (plus jitter) before accepting it, or drops it with the loss rate — real packets, so TCP
// retransmits what was dropped. The queue is read with nfnetlink_queue in metadata-only mode:
// no packet is copied to userspace.

// nfnetlink_queue constants (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue   = 3
	nfqnlMsgPacket    = 0
	nfqnlMsgVerdict   = 1
	nfqnlMsgConfig    = 2
	nfqaPacketHdr     = 1
	nfqaVerdictHdr    = 2
	nfqaCfgCmd        = 1
	nfqaCfgParams     = 2
	nfqaCfgQueueMax   = 3
	nfqnlCfgCmdBind   = 1
	nfqnlCfgCmdUnbind = 2
	nfqnlCopyMeta     = 1
	nfDrop            = 0
	nfAccept          = 1
)

// netemSpec is what a userspace netem does to each packet.
type netemSpec struct {
	Delay, Jitter time.Duration
	Loss          float64
}

// nfQueue is one bound queue in one namespace.
type nfQueue struct {
	conn *netlink.Conn
	num  uint16
	spec netemSpec

	mu   sync.Mutex // guards rng and last
	rng  *rand.Rand
	last time.Time

	wg   sync.WaitGroup
	done chan struct{}
}

// nfMsg builds an nfnetlink message of the queue subsystem.
func nfMsg(typ int, num uint16, family uint8, attrs []netlink.Attribute, flags netlink.HeaderFlags) (netlink.Message, error) {
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return netlink.Message{}, err
	}
	hdr := []byte{family, 0, byte(num >> 8), byte(num)}
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | typ), Flags: flags},
		Data: append(hdr, b...)}, nil
}

// openNFQueue binds queue num in namespace ns and serves it until Close.
func openNFQueue(ns string, num uint16, spec netemSpec, seed uint64) (*nfQueue, error) {
	cfg := &netlink.Config{}
	if ns != "" {
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("chaos: open network namespace %s: %w", ns, err)
		}
		defer unix.Close(fd)
		cfg.NetNS = fd
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("chaos: nfnetlink in %s: %w", ns, err)
	}
	q := &nfQueue{conn: c, num: num, spec: spec, rng: rand.New(rand.NewPCG(seed, uint64(num))), done: make(chan struct{})}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0)
	params[4] = nfqnlCopyMeta
	maxLen := make([]byte, 4)
	binary.BigEndian.PutUint32(maxLen, 1<<16)
	for _, attrs := range [][]netlink.Attribute{
		{{Type: nfqaCfgCmd, Data: []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET}}},
		{{Type: nfqaCfgParams, Data: params}},
		{{Type: nfqaCfgQueueMax, Data: maxLen}},
	} {
		m, err := nfMsg(nfqnlMsgConfig, num, unix.AF_UNSPEC, attrs, netlink.Request|netlink.Acknowledge)
		if err == nil {
			_, err = c.Execute(m)
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("chaos: bind nfqueue %d in %s (needs nfnetlink_queue): %w", num, ns, err)
		}
	}
	q.wg.Add(1)
	go q.serve()
	return q, nil
}

// serve reads queued packets and schedules their verdicts.
func (q *nfQueue) serve() {
	defer q.wg.Done()
	for {
		msgs, err := q.conn.Receive()
		if err != nil {
			select {
			case <-q.done:
				return
			default:
			}
			if errors.Is(err, unix.ENOBUFS) {
				continue // the kernel dropped notifications; packets still wait (bypass not involved)
			}
			return
		}
		for _, m := range msgs {
			if int(m.Header.Type)&0xff != nfqnlMsgPacket || len(m.Data) < 4 {
				continue
			}
			attrs, err := netlink.UnmarshalAttributes(m.Data[4:])
			if err != nil {
				continue
			}
			for _, a := range attrs {
				if a.Type&0x3fff == nfqaPacketHdr && len(a.Data) >= 4 {
					q.schedule(binary.BigEndian.Uint32(a.Data))
				}
			}
		}
	}
}

// schedule decides packet id's fate: dropped now, or accepted when due (in arrival order).
func (q *nfQueue) schedule(id uint32) {
	q.mu.Lock()
	drop := q.spec.Loss > 0 && q.rng.Float64() < q.spec.Loss
	d := q.spec.Delay
	if q.spec.Jitter > 0 {
		d += time.Duration(q.rng.Int64N(int64(2*q.spec.Jitter)+1)) - q.spec.Jitter
	}
	due := time.Now().Add(max(d, 0))
	if due.Before(q.last) {
		due = q.last
	}
	q.last = due
	q.mu.Unlock()
	if drop {
		q.verdict(id, nfDrop)
		return
	}
	time.AfterFunc(time.Until(due), func() { q.verdict(id, nfAccept) })
}

func (q *nfQueue) verdict(id uint32, v uint32) {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], id)
	m, err := nfMsg(nfqnlMsgVerdict, q.num, unix.AF_UNSPEC, []netlink.Attribute{{Type: nfqaVerdictHdr, Data: b}}, netlink.Request)
	if err == nil {
		q.conn.Send(m)
	}
}

// Close unbinds the queue; packets still held are let through by the kernel's bypass once the
// table is gone, and the table is removed by the caller first.
func (q *nfQueue) Close() error {
	close(q.done)
	m, err := nfMsg(nfqnlMsgConfig, q.num, unix.AF_UNSPEC, []netlink.Attribute{{Type: nfqaCfgCmd, Data: []byte{nfqnlCfgCmdUnbind, 0, 0, unix.AF_INET}}}, netlink.Request)
	if err == nil {
		q.conn.Send(m)
	}
	err = q.conn.Close()
	q.wg.Wait()
	return err
}

// addQueueTable adds a table in namespace ns that queues to queue num the packets of eth0
// whose other end matches which: every one (both), the fabric's host address (clients), or
// another broker of the subnet (peers). It uses nftables' queue expression, or where the
// kernel lacks it (nft_queue), the x_tables NFQUEUE target through nft_compat.
func addQueueTable(ns, table string, num uint16, which string, host netip.Addr, subnet netip.Prefix) error {
	err := queueTable(ns, table, num, which, host, subnet, &expr.Queue{Num: num, Flag: expr.QueueFlagBypass})
	if err == nil {
		return nil
	}
	// xt_NFQ_info_v3: queuenum, queues_total, flags (NFQ_FLAG_BYPASS), in host byte order,
	// padded to 8 bytes.
	info := make(xt.Unknown, 8)
	binary.NativeEndian.PutUint16(info, num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	binary.NativeEndian.PutUint16(info[4:], 1)
	if cerr := queueTable(ns, table, num, which, host, subnet, &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}); cerr != nil {
		return errors.Join(err, cerr)
	}
	return nil
}

func queueTable(ns, table string, num uint16, which string, host netip.Addr, subnet netip.Prefix, queue expr.Any) error {
	return nftIn(ns, func(c *nftables.Conn) error {
		t := c.AddTable(&nftables.Table{Name: table, Family: nftables.TableFamilyIPv4})
		accept := nftables.ChainPolicyAccept
		eth0 := []byte("eth0\x00")
		h := host.As4()
		netw := subnet.Masked().Addr().As4()
		for _, hook := range []struct {
			name   string
			hook   *nftables.ChainHook
			iface  expr.MetaKey
			offset uint32 // of the other end's address: 12 source (input), 16 destination (output)
		}{{"input", nftables.ChainHookInput, expr.MetaKeyIIFNAME, 12}, {"output", nftables.ChainHookOutput, expr.MetaKeyOIFNAME, 16}} {
			ch := c.AddChain(&nftables.Chain{Name: hook.name, Table: t, Type: nftables.ChainTypeFilter,
				Hooknum: hook.hook, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityFilter + 10), Policy: &accept})
			ex := []expr.Any{
				&expr.Meta{Key: hook.iface, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: eth0},
			}
			addr := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: hook.offset, Len: 4}
			switch which {
			case "clients":
				ex = append(ex, addr, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: h[:]})
			case "peers":
				ex = append(ex, addr, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: h[:]}, addr,
					&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 255, 0}, Xor: []byte{0, 0, 0, 0}},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: netw[:]})
			}
			ex = append(ex, queue)
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ex})
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("chaos: nftables queue table %s in %s: %w", table, ns, err)
		}
		return nil
	})
}
