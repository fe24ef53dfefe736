package loadgen

import (
	"os"
	"runtime/debug"
)

// Garbage collector settings of a load-generating process (see TuneGC).
const (
	// gcPercent is GOGC for a load generator: 400 (Go's default is 100).
	gcPercent = 400
	// gcMemoryLimit is the soft memory limit that comes with it: 1.5 GiB, so the process
	// stays below 2 GB however large its live heap grows (a checker's, a long history's).
	gcMemoryLimit = 1536 << 20
)

// TuneGC sets the garbage collector of this process for generating load, and returns the
// function that restores the previous settings: GOGC 400 unless the GOGC environment
// variable is set, and a soft memory limit of 1.5 GiB unless GOMEMLIMIT is set.
//
// A producer at capacity keeps only its window of records alive, a few megabytes, and at
// Go's default GOGC of 100 the collector then runs every few megabytes allocated: dozens of
// times a second at 300,000 1KiB records/s. A franz-go producer held to 7,000 records in
// flight spent 15-20% more CPU per record than one held to 30,000 at GOGC 100, and the same
// at GOGC 400; on cores the load generator shares with the cluster that cost is throughput,
// and the capacity search, which bounds the records in flight, measured the collector.
func TuneGC() (restore func()) {
	var undo []func()
	if os.Getenv("GOGC") == "" {
		prev := debug.SetGCPercent(gcPercent)
		undo = append(undo, func() { debug.SetGCPercent(prev) })
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		prev := debug.SetMemoryLimit(gcMemoryLimit)
		undo = append(undo, func() { debug.SetMemoryLimit(prev) })
	}
	return func() {
		for _, f := range undo {
			f()
		}
	}
}
