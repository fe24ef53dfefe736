//go:build !cgo

package loadgen

import (
	"errors"

	"github.com/kchaos/kchaos/clientconfig"
)

// newConfluentDriver fails: the confluent driver is confluent-kafka-go, which wraps
// librdkafka through cgo, and this binary was built without cgo.
func newConfluentDriver([]string, *clientconfig.Config) (Driver, error) {
	return nil, errors.New("loadgen: driver confluent is missing from this build: it needs cgo (confluent-kafka-go links librdkafka); build kchaos with CGO_ENABLED=1 and a C compiler")
}
