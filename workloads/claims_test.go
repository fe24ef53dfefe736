package workloads

import (
	"strings"
	"testing"
	"time"
)

// TestMatrixList: a list of mappings runs exactly its entries, named by their values, and
// fields the entries do not set keep the file's value.
func TestMatrixList(t *testing.T) {
	src := `
producer: {acks: all, batchSize: 16KiB}
topicConfig: {min.insync.replicas: 2}
matrix:
  - {acks: 0}
  - {acks: 1, topicConfig.min.insync.replicas: 1}
  - {acks: all, idempotence: true}
  - {batchSize: 256KiB}
  - {linger: 20ms, retries: 3}
`
	plan, err := Parse("l.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range plan.Configs {
		names = append(names, c.Config)
	}
	want := "acks=0;acks=1,topicConfig.min.insync.replicas=1;acks=all,idempotence=true;batchSize=256KiB;linger=20ms,retries=3"
	if got := strings.Join(names, ";"); got != want {
		t.Fatalf("configs %s, want %s", got, want)
	}
	c := plan.Configs[1]
	if c.Producer.Acks != "1" || c.MinInsyncReplicas() != 1 || c.Producer.BatchSize != 16<<10 {
		t.Errorf("entry 1: acks %s min.insync %d batch %s", c.Producer.Acks, c.MinInsyncReplicas(), c.Producer.BatchSize)
	}
	if c := plan.Configs[3]; c.Producer.Acks != "all" || c.Producer.BatchSize != 256<<10 || c.MinInsyncReplicas() != 2 {
		t.Errorf("entry 3 lost the file's values: acks %s batch %s min.insync %d", c.Producer.Acks, c.Producer.BatchSize, c.MinInsyncReplicas())
	}
	// Pointer fields take the entry's value (linger once came out as its 5ms default).
	if c := plan.Configs[4]; *c.Producer.Linger != Duration(20*time.Millisecond) || *c.Producer.Retries != 3 || *plan.Configs[0].Producer.Retries == 3 {
		t.Errorf("entry 4: linger %s retries %d", c.Producer.Linger, *c.Producer.Retries)
	}
}

// TestClaimsResolveSides: each side's matchers select configurations by their values after
// defaults and units (acks -1 is all, 16384 is 16KiB), by alias or dotted path, with lists
// meaning any of; an entry without sides takes every configuration.
func TestClaimsResolveSides(t *testing.T) {
	src := `
trials: 3
trialBudget: 10m
matrix:
  - {acks: 1}
  - {acks: all, batchSize: 16384}
  - {acks: all, batchSize: 256KiB}
  - {acks: all, consumer.mode: batch}
claims:
  - {id: 2, unsafe: {acks: 1}, safe: {producer.acks: -1, batchSize: 16KiB}}
  - {id: 17, unsafe: {consumer.mode: group, acks: 1}, safe: {consumer.mode: [batch, async]}}
  - {id: 7}
`
	plan, err := Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Trials != 3 || plan.TrialBudget != 10*time.Minute {
		t.Errorf("trials %d budget %v", plan.Trials, plan.TrialBudget)
	}
	if len(plan.Claims) != 3 {
		t.Fatalf("claims: %+v", plan.Claims)
	}
	c2 := plan.Claims[0]
	if c2.ID != 2 || c2.Pos != "c.yaml:10" || strings.Join(c2.Unsafe.Configs, ";") != "acks=1" ||
		strings.Join(c2.Safe.Configs, ";") != "acks=all,batchSize=16384;acks=all,consumer.mode=batch" {
		t.Errorf("claim 2: %+v", c2)
	}
	if c2.Safe.String() != "producer.acks=-1,batchSize=16KiB" {
		t.Errorf("safe side written as %q", c2.Safe.String())
	}
	c17 := plan.Claims[1]
	if strings.Join(c17.Unsafe.Configs, ";") != "acks=1" || strings.Join(c17.Safe.Configs, ";") != "acks=all,consumer.mode=batch" {
		t.Errorf("claim 17: %+v", c17)
	}
	if c7 := plan.Claims[2]; !c7.All || len(c7.Unsafe.Configs) != 0 {
		t.Errorf("claim 7: %+v", c7)
	}
	plan, err = Parse("d.yaml", []byte("producer: {acks: 1}\n"))
	if err != nil || len(plan.Claims) != 0 || plan.Trials != 1 || plan.TrialBudget != 0 {
		t.Errorf("defaults: %v %+v", err, plan)
	}
}

// twoAcks is a matrix of two configurations the claims error cases select from.
const twoAcks = "matrix:\n  acks: [1, all]\n"
