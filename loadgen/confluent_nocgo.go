//go:build !cgo

package loadgen

import (
	"errors"

	"github.com/kchaos/kchaos/clientconfig"
)

// errConfluentMissing is what asking for the confluent driver gets in a build without cgo.
var errConfluentMissing = errors.New("loadgen: driver confluent is missing from this build: it needs cgo (confluent-kafka-go links librdkafka); build kchaos with CGO_ENABLED=1 and a C compiler")

func init() { driverMissing["confluent"] = errConfluentMissing }

// newConfluentDriver fails: the confluent driver is confluent-kafka-go, which wraps
// librdkafka through cgo, and this binary was built without cgo.
func newConfluentDriver([]string, *clientconfig.Config) (Driver, error) {
	return nil, errConfluentMissing
}
