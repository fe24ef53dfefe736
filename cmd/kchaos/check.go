package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/checker"
)

func init() { commands = append(commands, newCheckCmd) }

// historyFile is the name of a run's history inside each config folder.
const historyFile = "history.jsonl"

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
				res, err := checkOne(cmd.OutOrStdout(), f, linear, linearTimeout)
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

// findHistories returns path itself when it is a file, else every history.jsonl under it.
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
		if !d.IsDir() && d.Name() == historyFile {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("check: no " + historyFile + " under " + path)
	}
	sort.Strings(out)
	return out, nil
}

// checkOne checks one history, writes verdict.json beside it and prints its summary.
func checkOne(w io.Writer, path string, linear bool, timeout time.Duration) (*checker.Result, error) {
	res, err := checker.CheckFile(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if linear {
		lr, err := checker.CheckLinearizableFile(path, checker.LinearOptions{Timeout: timeout, OutDir: filepath.Join(dir, "linearizability")})
		if err != nil {
			return nil, err
		}
		res.Linearizable = lr
		checker.Judge(res)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "verdict.json"), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if err := checker.WriteSummary(w, res); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	fmt.Fprintln(w)
	return res, nil
}
