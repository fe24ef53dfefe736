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
// The scheduler and target selection are pure (seed and view in, values out) and open no
// sockets; the runner, the resolver and the drivers are the I/O edges. Only processes and
// proxies this package (or the launcher that handed them over) created are ever touched.
package chaos
