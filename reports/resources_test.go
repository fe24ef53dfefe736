package reports

import (
	"os"
	"path/filepath"
	"testing"

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
