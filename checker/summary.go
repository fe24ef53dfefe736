package checker

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteSummary writes a human summary of r in aligned columns: run, counts, anomalies
// (informational ones marked, with their reason beside their examples), guarantees with
// their verdicts, and the examples of every anomaly found.
func WriteSummary(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "History\t%s\n", r.File)
	if r.Run != nil {
		fmt.Fprintf(tw, "Run [id, config, seed]\t%s, %s, %d\n", r.Run.RunID, r.Run.Config, r.Run.Seed)
		fmt.Fprintf(tw, "Producer [acks, idempotent, transactional, max.in.flight]\t%s, %t, %t, %d\n",
			r.Run.Acks, r.Run.Idempotent, r.Run.Transactional, r.Run.MaxInFlight)
		fmt.Fprintf(tw, "Topic [RF, min.insync, unclean]\t%d, %d, %t\n", r.Run.ReplicationFactor, r.Run.MinInsyncReplicas, r.Run.UncleanElection)
		fmt.Fprintf(tw, "Consumer [isolation, commit mode]\t%s, %s\n", r.Run.IsolationLevel, r.Run.CommitMode)
	}
	s := r.Stats
	fmt.Fprintf(tw, "Events [total, duration]\t%d, %s\n", r.Events, time.Duration(r.End))
	fmt.Fprintf(tw, "Sends [ok, fail, info, pending]\t%d, %d, %d, %d\n", s.SendsOK, s.SendsFail, s.SendsInfo, s.SendsPending)
	fmt.Fprintf(tw, "Reads [polls, records, processed, commits]\t%d, %d, %d, %d\n", s.Polls, s.RecordsRead, s.Processed, s.Commits)
	fmt.Fprintf(tw, "Partitions, crashes, ISR samples\t%d, %d, %d\n", s.Partitions, s.Crashes, s.MetaSamples)
	if s.Outputs > 0 {
		fmt.Fprintf(tw, "Transform outputs [sent or read, read committed, inputs untransformed]\t%d, %d, %d\n", s.Outputs, s.OutputsRead, s.Untransformed)
	}
	fmt.Fprintf(tw, "Acked by the leader alone (acks=all, ISR=1)\t%d\n", s.AckedLeaderOnly)
	fmt.Fprintf(tw, "Faults\t%d\n", len(r.Faults))
	for _, f := range r.Faults {
		fmt.Fprintf(tw, "  fault %d\t%s %s nodes %v [%s, %s]\n", f.ID, f.Kind, f.Target, f.Nodes, time.Duration(f.Start), time.Duration(f.End))
	}
	fmt.Fprintf(tw, "\nAnomaly\tCount\n")
	for _, n := range AnomalyNames {
		note := ""
		if a := r.Anomalies[n]; a != nil && a.Informational != "" {
			note = "\tinformational"
		}
		fmt.Fprintf(tw, "  %s\t%d%s\n", n, r.Count(n), note)
	}
	if l := r.Linearizable; l != nil {
		fmt.Fprintf(tw, "\nLinearizable [result, partitions, illegal, unknown, elapsed]\t%s, %d, %d, %d, %s\n",
			l.Result, len(l.Partitions), len(l.Illegal), len(l.Unknown), l.Elapsed.Round(time.Millisecond))
		for _, p := range l.Partitions {
			if p.Visualization != "" {
				fmt.Fprintf(tw, "  %s/%d\t%s\n", p.Topic, p.Partition, p.Visualization)
			}
		}
	}
	fmt.Fprintf(tw, "\nGuarantee\tStatus\tViolations\tWhy\n")
	for _, g := range r.Guarantees {
		why := g.Reason
		if g.Note != "" {
			why += "; " + g.Note
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", g.Name, g.Status, g.Violations, why)
	}
	fmt.Fprintf(tw, "\nVerdict\t%s\n", strings.ToUpper(r.Verdict))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range AnomalyNames {
		a := r.Anomalies[n]
		if a == nil || a.Count == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: %d (showing %d)\n", n, a.Count, len(a.Examples))
		if a.Informational != "" {
			fmt.Fprintf(w, "  informational, judges nothing: %s\n", a.Informational)
		}
		for _, ex := range a.Examples {
			fmt.Fprintf(w, "  value %q %s/%d offsets %v t=[%s, %s] process %d faults %v: %s\n", ex.Value, ex.Topic, ex.Partition,
				ex.Offsets, time.Duration(ex.Start), time.Duration(ex.End), ex.Process, ex.Faults, ex.Detail)
		}
	}
	return nil
}
