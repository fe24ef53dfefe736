package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestScheduleScript runs the scheduler's scenarios in testdata/schedule: each is a fault spec
// (the input, as a workload's chaos section) scheduled with the command's seed, run length and
// cluster view, and prints the timed actions, or the scheduler's error. Regenerate the
// expected output with -rewrite and review the diff.
//
//	schedule seed=1 duration=100s brokers=3 [kinds=(kill,pause)]
func TestScheduleScript(t *testing.T) {
	datadriven.Walk(t, "testdata/schedule", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "schedule" {
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			var seed int64
			var dur string
			view := View{}
			d.ScanArgs(t, "seed", &seed)
			d.ScanArgs(t, "duration", &dur)
			d.ScanArgs(t, "brokers", &view.Brokers)
			if d.HasArg("kinds") {
				var kinds []string
				d.ScanArgs(t, "kinds", &kinds)
				for _, k := range kinds {
					view.Kinds = append(view.Kinds, Kind(k))
				}
			}
			length, err := time.ParseDuration(dur)
			if err != nil {
				d.Fatalf(t, "duration %q: %v", dur, err)
			}
			faults, err := ParseYAML("s.yaml", []byte(d.Input))
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			acts, err := Schedule(seed, faults, length, view)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			checkSchedule(t, acts, length)
			var b strings.Builder
			for _, a := range acts {
				fmt.Fprintf(&b, "%-8s #%-2d %-5s %s", a.At.D().Round(time.Millisecond), a.ID, a.Phase, a.Fault.Kind)
				if !a.Fault.Target.IsZero() {
					fmt.Fprintf(&b, " %s", a.Fault.Target)
				}
				for _, k := range slices.Sorted(maps.Keys(a.Fault.Params)) {
					fmt.Fprintf(&b, " %s=%s", k, a.Fault.Params[k])
				}
				b.WriteString("\n")
			}
			return b.String()
		})
	})
}
