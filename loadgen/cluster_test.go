package loadgen

import (
	"os"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/workloads"
)

func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }

// testBootstrap starts franz-go's in-memory kfake for one test and returns its bootstrap
// addresses; the cluster stops when the test ends.
func testBootstrap(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// kchaosBootstrap starts a real kchaos broker process for one test.
func kchaosBootstrap(t testing.TB) []string {
	t.Helper()
	return []string{brokertest.Start(t, brokertest.Set("group.initial.rebalance.delay.ms", "0")).Addr()}
}

// allModes are the consumer modes.
var allModes = map[string]bool{workloads.ModeGroup: true, workloads.ModeAssign: true, workloads.ModeBatch: true, workloads.ModeAsync: true}

// targets are the brokers the end-to-end tests run against, with the consumer modes each
// serves.
var targets = []struct {
	name      string
	bootstrap func(testing.TB) []string
	modes     map[string]bool
}{
	{"kchaos", kchaosBootstrap, allModes},
	{"kfake", testBootstrap, allModes},
}

// allDrivers are the drivers every end-to-end table runs (those this test binary was built
// with: confluent needs cgo); txnDrivers those that send in transactions and
// consume-transform-produce (all but kafka-go).
var (
	allDrivers = AvailableDrivers()
	txnDrivers = slices.DeleteFunc(AvailableDrivers(), func(d string) bool { return d == "kafka-go" })
)
