package reports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kchaos/kchaos/checker"
)

// TestPlotUnseen: a configuration whose verdict carries series gets the unseen and lag chart;
// one without gets none.
func TestPlotUnseen(t *testing.T) {
	dir := t.TempDir()
	cd := &ConfigData{Summary: &ConfigSummary{Name: "c"}, Timeline: &Timeline{}, Series: &checker.Series{Step: 1e8, Times: []int64{1e8, 2e8, 3e8},
		UnseenByPartition: map[string][]int64{"t/0": {0, 5, 0}}, UnseenByKeyBucket: map[string][]int64{"keys 0 mod 8": {0, 5, 0}},
		Lag: map[string][]int64{"process 2": {-1, 3e8, 0}}, DrainStart: 2e8, DrainEnd: 3e8}}
	c, ok, err := PlotUnseen(cd, dir, "plots")
	if err != nil || !ok {
		t.Fatalf("PlotUnseen: %v %v", ok, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "unseen.png")); err != nil || st.Size() == 0 || c.Path != filepath.Join("plots", "unseen") {
		t.Fatalf("chart %+v: %v", c, err)
	}
	if _, ok, _ := PlotUnseen(&ConfigData{Summary: &ConfigSummary{Name: "c"}}, dir, "plots"); ok {
		t.Error("a verdict without series drew a chart")
	}
}
