//go:build !cgo

package loadgen

import "testing"

// bareConfluentRate is never called without cgo: the confluent driver is not in the build
// (AvailableDrivers leaves it out).
func bareConfluentRate(b *testing.B, _ []string, _ string, _ float64) (float64, [2]float64) {
	b.Fatal("loadgen: driver confluent needs cgo")
	return 0, [2]float64{}
}
