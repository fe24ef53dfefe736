//go:build !cgo

package loadgen

// cgoDrivers are the drivers that need cgo: none in a test binary without it.
var cgoDrivers []string
