package reports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/rundir"
)

// TestPlotResourcesFromRunDirectory draws the resource charts of a recorded configuration
// from its resources.json alone, as kchaos report does.
func TestPlotResourcesFromRunDirectory(t *testing.T) {
	var r rundir.Resources
	if ok, err := readJSON(filepath.Join("testdata", "run", "acks=1", ResourcesFile), &r); !ok || err != nil {
		t.Fatalf("resources.json: %v %v", ok, err)
	}
	if len(r.Names()) == 0 {
		t.Fatal("the fixture's resources.json names no process")
	}
	dir := t.TempDir()
	cd := &ConfigData{Summary: &ConfigSummary{Name: "acks=1"}, Resources: &r}
	c, ok, err := PlotResources(cd, dir, PlotsDir)
	if err != nil || !ok || c.Path == "" {
		t.Fatalf("plot resources: %v %v %+v", ok, err, c)
	}
	if st, err := os.Stat(filepath.Join(dir, "resources.svg")); err != nil || st.Size() == 0 {
		t.Errorf("resources.svg: %v", err)
	}
}

// TestResourceFaultsOnSamplerClock places cpu-stress and memory-pressure windows on the
// sampler's clock (which starts 2.5s before the history here) and leaves the other kinds to
// the timeline.
func TestResourceFaultsOnSamplerClock(t *testing.T) {
	cd := &ConfigData{Header: &history.Run{Start: "2026-01-02T03:04:07.5Z"},
		Summary: &ConfigSummary{Faults: []Fault{{Kind: "cpu-stress", Start: 1, End: 3}, {Kind: "kill", Start: 4, End: 5}, {Kind: "memory-pressure", Start: 6, End: 7}}}}
	got := shiftedFaults(cd, "2026-01-02T03:04:05Z")
	if len(got) != 2 || got[0].Start != 3.5 || got[0].End != 5.5 || got[1].Kind != "memory-pressure" || got[1].Start != 8.5 {
		t.Fatalf("shifted %+v", got)
	}
	if shiftedFaults(cd, "yesterday") != nil {
		t.Fatal("an unreadable sampler start still shifted the windows")
	}
}
