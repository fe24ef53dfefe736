// Package chaos is the kchaos chaos controller: faults as data, a deterministic seeded
// scheduler, target resolution through the Kafka protocol, drivers that act on the world, and a
// heal registry that undoes every change on normal exit, on error, on Ctrl-C and after a crash
// of the harness itself.
//
// Data flow, one direction:
//
//	workload chaos: section ──Parse──▶ []Fault ──Schedule(seed, duration, view)──▶ []Action
//	Start: at each Action's time ──Resolver (Kafka Metadata)──▶ broker ids
//	       ──Driver.Apply──▶ world changed, undo kept in the Registry (+ RUNDIR/chaos-actions.jsonl)
//	       ──▶ history fault events (start/end, resolved nodes)
//
// Drivers: Local (link proxies, which also read the Kafka frames crossing them for corrupt,
// duplicate, reorder and client clock skew; the launcher's processes; the brokers' clock and
// disk control files; cgroups and busy loops; no root except for cgroups), Netns (root on
// Linux: each broker in a network namespace of a Fabric, cuts as nftables rules, tc qdiscs or,
// without netem, a userspace netem on NFQUEUE, tmpfs data directories) and SSH (command
// templates on remote hosts, with the fault's params as template values). WithMembership adds
// the membership kinds through the Kafka admin API to any of them. The same fault spec works
// on each; a driver's Kinds say what it can do.
//
// The scheduler and target selection are pure (seed and view in, values out) and open no
// sockets; the runner, the resolver and the drivers are the I/O edges. Only processes,
// proxies, namespaces, links, nftables tables, qdiscs and mounts this package (or the launcher
// that handed them over) created are ever touched.
package chaos
