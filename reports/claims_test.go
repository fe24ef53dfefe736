package reports

import (
	"strings"
	"testing"
)

func cfg(name, acks, rate string, msgs, p50 float64, faults []Fault, gs ...Guarantee) *ConfigData {
	return &ConfigData{Summary: &ConfigSummary{Name: name, Params: map[string]string{"acks": acks, "producer_rate": rate, "min.insync.replicas": "2"},
		Throughput: Throughput{MsgsPerSec: msgs}, PublishLatency: &Latency{P50: p50}, Faults: faults, Guarantees: gs,
		Anomalies: map[string]int64{}, Errors: map[string]int64{"NOT_ENOUGH_REPLICAS": 4}}}
}

func claim(t *testing.T, cds []*ConfigData, id int) ClaimResult {
	t.Helper()
	for _, c := range JudgeClaims(cds) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("claim %d not answered", id)
	return ClaimResult{}
}

func TestClaimSevenAcksOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		cds  []*ConfigData
		want string
		note string
	}{
		{"lore holds", []*ConfigData{cfg("a0", "0", "0", 9000, 1, nil), cfg("a1", "1", "0", 6000, 2, nil), cfg("aall", "all", "0", 4000, 4, nil)}, ClaimHeld, ""},
		{"acks=all faster", []*ConfigData{cfg("a1", "1", "0", 4000, 2, nil), cfg("aall", "all", "0", 6000, 2.1, nil)}, ClaimDidNotHold, "acks=all was faster"},
		{"acks=all lower p50", []*ConfigData{cfg("a1", "1", "0", 4000, 5, nil), cfg("aall", "all", "0", 4000, 3, nil)}, ClaimDidNotHold, "lower p50"},
		{"throttled, equal rates", []*ConfigData{cfg("a1", "1", "100", 100, 2, nil), cfg("aall", "all", "100", 120, 2.2, nil)}, ClaimHeld, "fixed target rate"},
		{"faults only", []*ConfigData{cfg("a1", "1", "0", 1, 2, []Fault{{Kind: "kill"}}), cfg("aall", "all", "0", 1, 2, []Fault{{Kind: "kill"}})}, ClaimNotExercised, ""},
	} {
		c := claim(t, tc.cds, 7)
		if c.Status != tc.want || !strings.Contains(c.Measured, tc.note) {
			t.Errorf("%s: %s: %s, want %s mentioning %q", tc.name, c.Status, c.Measured, tc.want, tc.note)
		}
	}
}

func TestClaimsFollowCheckerVerdicts(t *testing.T) {
	kill := []Fault{{ID: 1, Kind: "kill", Target: "leader(t,0)"}}
	durable := func(status string, v int64) Guarantee {
		return Guarantee{Name: "acked-writes-durable", Claimed: true, Status: status, Violations: v}
	}
	minISR := Guarantee{Name: "min-insync-enforced", Claimed: true, Status: "pass"}
	lossy := cfg("acks=all,lossy", "all", "0", 1, 1, kill, durable("fail", 3), minISR)
	safe := cfg("acks=all,safe", "all", "0", 1, 1, kill, durable("pass", 0), minISR)
	if c := claim(t, []*ConfigData{safe}, 3); c.Status != ClaimHeld || !strings.Contains(c.Measured, "pass, 0 violations") {
		t.Errorf("claim 3 with the guarantee passing: %+v", c)
	}
	if c := claim(t, []*ConfigData{safe, lossy}, 3); c.Status != ClaimDidNotHold || !strings.Contains(c.Measured, "acks=all,lossy: fail, 3 violations") {
		t.Errorf("claim 3 with a loss: %+v", c)
	}
	if c := claim(t, []*ConfigData{safe}, 5); c.Status != ClaimHeld || !strings.Contains(c.Measured, "4 writes refused") {
		t.Errorf("claim 5: %+v", c)
	}
	a1 := cfg("acks=1", "1", "0", 1, 1, kill)
	a1.Summary.Anomalies["lost"] = 2
	if c := claim(t, []*ConfigData{a1}, 2); c.Status != ClaimHeld || !strings.Contains(c.Measured, "2 acknowledged records lost") {
		t.Errorf("claim 2: %+v", c)
	}
}
