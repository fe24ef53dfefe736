package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTimelineShadesAndLabelsFaults draws a timeline with a fault window and a leader
// change: the SVG must carry the fault's label and a shaded band, and the panels must show
// the ISR when samples exist.
func TestTimelineShadesAndLabelsFaults(t *testing.T) {
	var pts []Point
	for i := range 6 {
		pts = append(pts, Point{T: float64(i + 1), Sent: 100, Acked: 100, PublishP99: 5, EndToEndP99: 8, Lag: int64(i), MinISR: 3})
	}
	pts[2].Acked, pts[2].MinISR = 10, 1
	cd := &ConfigData{
		Summary:  &ConfigSummary{Name: "acks=all", Faults: []Fault{{ID: 1, Kind: "kill", Target: "leader(t,0)", Start: 2, End: 3.5}}},
		Timeline: &Timeline{Points: pts, LeaderChanges: []Marker{{T: 2.2, Label: "t/0 leader 1→2"}}},
	}
	dir := t.TempDir()
	c, err := PlotTimeline(cd, dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != filepath.Join("x", "timeline") {
		t.Errorf("chart path %q", c.Path)
	}
	b, err := os.ReadFile(filepath.Join(dir, "timeline.svg"))
	if err != nil {
		t.Fatal(err)
	}
	svg := string(b)
	if n := strings.Count(svg, "kill leader(t,0)"); n != 4 {
		t.Errorf("fault label appears %d times, want once per panel (4)", n)
	}
	if !strings.Contains(svg, "Smallest ISR") {
		t.Error("no ISR panel although ISR samples exist")
	}
	if n := strings.Count(svg, "fill:#E53B3B;fill-opacity:"); n != 4 {
		t.Errorf("%d translucent fault bands in the SVG, want one per panel (4)", n)
	}
}
