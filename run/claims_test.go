package run

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kchaos/kchaos/workloads"
)

// TestShippedClaimFilesMakeTheirExperiments: every shipped claim-NN file declares claim NN
// with trials, and its configurations and faults are what the claim's rule needs (a fault
// kind the rule does not know, such as claim 8's power loss under another name, fails here).
func TestShippedClaimFilesMakeTheirExperiments(t *testing.T) {
	number := regexp.MustCompile(`^claim-(\d\d)-`)
	files := 0
	for _, name := range workloads.Shipped() {
		m := number.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		files++
		plan, err := workloads.Open(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		id, _ := strconv.Atoi(m[1])
		if len(plan.Claims) != 1 || plan.Claims[0].ID != id {
			t.Errorf("%s declares claims %+v, want claim %d", name, plan.Claims, id)
		}
		if plan.Trials < 2 {
			t.Errorf("%s runs %d trial(s); a claim file repeats its contrast", name, plan.Trials)
		}
		if err := CheckClaims(plan); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if files < 18 {
		t.Errorf("%d claim files shipped, want one per claim of CLAIMS.md (two for 13)", files)
	}
}

// TestCheckClaimsCatchesMissingInputs: a file whose faults or configurations do not make
// its claim's experiment is refused before anything runs, naming the claim and what is
// missing.
func TestCheckClaimsCatchesMissingInputs(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"power loss on one broker for claim 8", `
replicationFactor: 3
chaos:
  - {kind: lose-unsynced, target: leader(topic-0,0), at: 5s}
matrix:
  topicConfig.flush.messages: [9223372036854775807, 1]
claims:
  - {id: 8, unsafe: {topicConfig.flush.messages: 9223372036854775807}, safe: {topicConfig.flush.messages: 1}}
`, []string{"w.yaml:8: claim 8", "lose-unsynced on every replica"}},
		{"no fault for claim 12", `
replicationFactor: 3
matrix:
  idempotence: [false, true]
claims:
  - {id: 12, unsafe: {idempotence: false}, safe: {idempotence: true}}
`, []string{"claim 12", "loses acknowledgements"}},
		{"sides swapped for claim 2", `
replicationFactor: 3
topicConfig: {min.insync.replicas: 2}
chaos:
  - {kind: leader-isolate-from-followers, target: leader(topic-0,0), at: 5s, for: 5s}
matrix:
  acks: [1, all]
claims:
  - {id: 2, unsafe: {acks: all}, safe: {acks: 1}}
`, []string{"acks=all: acks=1", "acks=1: acks=all"}},
		{"no such claim", `
matrix:
  acks: [1, all]
claims:
  - {id: 18, unsafe: {acks: 1}, safe: {acks: all}}
`, []string{"claim 18: CLAIMS.md has claims 1 to 17"}},
		{"claim 3 without sides", `
claims:
  - {id: 3}
`, []string{"claim 3 needs an unsafe and a safe side"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := workloads.Parse("w.yaml", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckClaims(plan)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
