//go:build cgo

package loadgen

// cgoDrivers are the drivers that need cgo: this test binary has it.
var cgoDrivers = []string{"confluent"}
