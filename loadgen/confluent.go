//go:build cgo

package loadgen

import "github.com/kchaos/kchaos/clientconfig"

func newConfluentDriver([]string, *clientconfig.Config) (Driver, error) { return nil, nil }
