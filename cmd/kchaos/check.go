package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/run"
	"github.com/kchaos/kchaos/rundir"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newCheckCmd) }

func newCheckCmd() *cobra.Command {
	var (
		linear        bool
		linearTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check HISTORY.jsonl|RUNDIR",
		Short: "Judge run histories: anomalies, linearizability, verdicts against claimed guarantees",
		Long: `check reads a history (or every history.jsonl under RUNDIR), runs the checker's
analyses, prints a summary per history and writes verdict.json next to each history. With
--linear it also checks each partition's log with porcupine and writes an HTML visualisation
of every illegal partition into linearizability/ next to the history.

Exit status: 0 when no claimed guarantee failed, 1 when a forbidden anomaly was found,
2 on bad input (unreadable or malformed history).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := findHistories(args[0])
			if err != nil {
				return err
			}
			failed := 0
			for _, f := range files {
				res, err := run.Check(cmd.OutOrStdout(), f, linear, linearTimeout)
				if err != nil {
					return err
				}
				if res.Failed() {
					failed++
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("check: %d of %d histories broke a claimed guarantee", failed, len(files))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&linear, "linear", true, "also check each partition's log for linearizability with porcupine")
	cmd.Flags().DurationVar(&linearTimeout, "linear-timeout", 30*time.Second, "time budget of the porcupine check per partition (a partition over it is unknown)")
	return cmd
}

// findHistories returns path itself when it is a file, else every history.jsonl (or
// history.jsonl.zst) under it.
func findHistories(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (d.Name() == rundir.HistoryFile || d.Name() == rundir.HistoryFile+history.CompressedSuffix) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("check: no " + rundir.HistoryFile + " under " + path)
	}
	sort.Strings(out)
	return out, nil
}
