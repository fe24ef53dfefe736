package loadgen

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// testBootstrap starts a Kafka-protocol cluster for one test and returns its bootstrap
// addresses; the cluster stops when the test ends. It is franz-go's in-memory kfake for
// now; switching to a kchaos broker process changes only this function.
func testBootstrap(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}
