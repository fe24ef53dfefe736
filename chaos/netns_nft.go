package chaos

import (
	"context"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nftIn opens an nftables connection in network namespace ns ("" is the root one) and calls
// fn with it.
func nftIn(ns string, fn func(*nftables.Conn) error) error {
	var opts []nftables.ConnOption
	if ns != "" {
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("chaos: open network namespace %s: %w", ns, err)
		}
		defer unix.Close(fd)
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("chaos: nftables: %w", err)
	}
	return fn(c)
}

// addCutTable adds a table in namespace ns whose rules stop traffic to and from peers: every
// packet with a peer as source (input) or destination (output) is dropped, or with reset,
// a TCP packet is answered with a reset and anything else dropped.
func addCutTable(ns, table string, peers []netip.Addr, reset bool) error {
	return nftIn(ns, func(c *nftables.Conn) error {
		t := c.AddTable(&nftables.Table{Name: table, Family: nftables.TableFamilyIPv4})
		accept := nftables.ChainPolicyAccept
		for _, hook := range []struct {
			name   string
			hook   *nftables.ChainHook
			offset uint32 // of the peer's address in the IPv4 header: 12 source, 16 destination
		}{{"input", nftables.ChainHookInput, 12}, {"output", nftables.ChainHookOutput, 16}} {
			ch := c.AddChain(&nftables.Chain{Name: hook.name, Table: t, Type: nftables.ChainTypeFilter,
				Hooknum: hook.hook, Priority: nftables.ChainPriorityFilter, Policy: &accept})
			if reset && len(peers) > 0 {
				// Let resets through, the ones the reject rules send included: a reset leaving
				// (or, for a rejected outgoing packet, coming back) would otherwise be dropped
				// by the very rules that made it.
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
					&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
					&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x04}, Xor: []byte{0}},
					&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0}},
					&expr.Verdict{Kind: expr.VerdictAccept},
				}})
			}
			for _, p := range peers {
				a := p.As4()
				match := []expr.Any{
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: hook.offset, Len: 4},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
				}
				if reset {
					rst := append(append([]expr.Any{}, match...),
						&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
						&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
						&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
					c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rst})
				}
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(match, &expr.Verdict{Kind: expr.VerdictDrop})})
			}
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("chaos: nftables table %s in %s: %w", table, ns, err)
		}
		return nil
	})
}

// deleteTable deletes table from namespace ns; a missing namespace or table is an error
// netnsGone() recognises.
func deleteTable(ns, table string) error {
	if _, err := os.Stat("/var/run/netns/" + ns); err != nil {
		return err
	}
	return nftIn(ns, func(c *nftables.Conn) error {
		c.DelTable(&nftables.Table{Name: table, Family: nftables.TableFamilyIPv4})
		if err := c.Flush(); err != nil {
			return fmt.Errorf("chaos: delete nftables table %s in %s: %w", table, ns, err)
		}
		return nil
	})
}

// kchaosTables returns the nftables tables with the kchaos- prefix in namespace ns.
func kchaosTables(ns string) ([]string, error) {
	var out []string
	err := nftIn(ns, func(c *nftables.Conn) error {
		ts, err := c.ListTables()
		if err != nil {
			return fmt.Errorf("chaos: list nftables tables: %w", err)
		}
		for _, t := range ts {
			if len(t.Name) >= len(NetnsPrefix) && t.Name[:len(NetnsPrefix)] == NetnsPrefix {
				out = append(out, t.Name)
			}
		}
		return nil
	})
	return out, err
}

// probeNftables adds and deletes a table in broker 1's namespace: the kernel must accept
// nf_tables for partitions.
func (f *Fabric) probeNftables(ctx context.Context) error {
	ns := f.nodes[1].ns
	table := NetnsPrefix + f.RunID + "-probe"
	rec := Record{Action: "nft-table", Netns: ns, Object: table, Undo: "delete"}
	seq := f.reg.Add(rec, undoNetnsFunc(rec))
	if err := addCutTable(ns, table, nil, false); err != nil {
		return fmt.Errorf("chaos: the kernel refuses nf_tables, which partitions need: %w", err)
	}
	return f.reg.Undo(ctx, seq)
}
