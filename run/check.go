package run

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/rundir"
)

// Check judges the history at path, writes rundir.VerdictFile beside it and prints the
// checker's summary to w. With linear it also checks each partition's log with porcupine
// (timeout per partition) and writes the visualisation of an illegal one into
// linearizability/ beside the history.
func Check(w io.Writer, path string, linear bool, timeout time.Duration) (*checker.Result, error) {
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
	if err := os.WriteFile(filepath.Join(dir, rundir.VerdictFile), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if err := checker.WriteSummary(w, res); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	fmt.Fprintln(w)
	return res, nil
}
