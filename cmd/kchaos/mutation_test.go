package main

import (
	"testing"

	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/internal/e2e"
)

// runMutation runs workload with broker settings sets and returns the checker's result for its
// single configuration.
func runMutation(t *testing.T, workload string, sets ...string) *checker.Result {
	t.Helper()
	res, stdout := e2e.RunWorkload(t, workload, sets...)
	r := res["default"]
	if r == nil {
		t.Fatalf("no verdict for the default configuration\n%s", stdout)
	}
	return r
}

func count(res *checker.Result, name string) int64 {
	if a := res.Anomalies[name]; a != nil {
		return a.Count
	}
	return 0
}

// TestMutationLoseLastBatch: a single broker that drops its last batch on restart loses
// acknowledged writes, and the checker says so.
func TestMutationLoseLastBatch(t *testing.T) {
	const workload = `name: lastbatch
topics: 1
partitionsPerTopic: 1
messageSize: 128
producersPerTopic: 1
producerRate: 500
subscriptionsPerTopic: 1
consumerPerSubscription: 1
duration: 6s
producer:
  acks: 1
  linger: 1ms
  retries: 10
consumer:
  mode: group
  commit: manual-after-processing
chaos:
  - kind: restart
    target: broker(1)
    at: 3s
`
	res := runMutation(t, workload, "kchaos.bug.lose-last-batch-on-restart=true")
	if n := count(res, checker.Lost) + count(res, checker.InconsistentOffsets); n == 0 {
		t.Fatalf("kchaos.bug.lose-last-batch-on-restart: lost %d, inconsistent-offsets %d; want the dropped batch reported",
			count(res, checker.Lost), count(res, checker.InconsistentOffsets))
	}
	t.Logf("lose-last-batch-on-restart: lost %d, inconsistent-offsets %d", count(res, checker.Lost), count(res, checker.InconsistentOffsets))
}
