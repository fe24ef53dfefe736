package reports

import (
	"slices"
	"strings"
)

// ClientComparison sets side by side the configurations of a run that differ only in their
// driver, the client library: the same workload, settings, seed and so the same faults.
type ClientComparison struct {
	// Configs is what the compared configurations share: their name without the driver
	// part ("acks=all,batch=16KiB"), or "default" when the driver was all that varied.
	Configs string `json:"configs"`
	// Drivers are the configurations, one per driver, in the order of
	// loadgen.DriverNames (sarama, franz-go, kafka-go, confluent).
	Drivers []ClientResult `json:"drivers"`
}

// ClientResult is one driver's configuration in a ClientComparison.
type ClientResult struct {
	// Driver is the driver's name; Library and Version its client library's Go module and
	// version, as the run recorded them.
	Driver  string `json:"driver"`
	Library string `json:"library,omitempty"`
	Version string `json:"version,omitempty"`
	// Config and Dir name the configuration.
	Config string `json:"config"`
	Dir    string `json:"dir"`
	// MsgsPerSec is the configuration's Throughput.MsgsPerSec.
	MsgsPerSec float64 `json:"msgs_per_sec"`
	Counts     Counts  `json:"counts"`
	// PublishLatency and EndToEnd are the configuration's latencies (nil when not measured).
	PublishLatency *Latency `json:"publish_latency,omitempty"`
	EndToEnd       *Latency `json:"end_to_end,omitempty"`
	// Anomalies are the anomalies the checker found (non-zero counts only), Informational
	// those of them that break nothing Kafka promises; Errors the operations' errors.
	Anomalies     map[string]int64 `json:"anomalies"`
	Informational []string         `json:"informational,omitempty"`
	Errors        map[string]int64 `json:"errors"`
	// Verdict is the checker's verdict; Faults the number of fault windows.
	Verdict string `json:"verdict"`
	Faults  int    `json:"faults"`
}

// driverOrder is the order comparisons list drivers in (loadgen.DriverNames; reports does
// not import the load generator).
var driverOrder = []string{"sarama", "franz-go", "kafka-go", "confluent"}

// CompareClients groups s's configurations that differ only in their driver (their names
// equal once the "driver=..." part is removed) and returns each group of two or more
// drivers, in run order of the group's first configuration.
func CompareClients(s *Summary) []ClientComparison {
	var keys []string
	groups := map[string][]*ConfigSummary{}
	for i := range s.Configs {
		c := &s.Configs[i]
		if c.Params["driver"] == "" {
			continue
		}
		k := withoutDriver(c.Name)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], c)
	}
	var out []ClientComparison
	for _, k := range keys {
		g := groups[k]
		drivers := map[string]bool{}
		for _, c := range g {
			drivers[c.Params["driver"]] = true
		}
		if len(drivers) < 2 {
			continue
		}
		slices.SortStableFunc(g, func(a, b *ConfigSummary) int {
			return driverRank(a.Params["driver"]) - driverRank(b.Params["driver"])
		})
		cmp := ClientComparison{Configs: k}
		for _, c := range g {
			cmp.Drivers = append(cmp.Drivers, clientResult(c))
		}
		out = append(out, cmp)
	}
	return out
}

func clientResult(c *ConfigSummary) ClientResult {
	r := ClientResult{Driver: c.Params["driver"], Library: c.Params["client_library"], Version: c.Params["client_version"],
		Config: c.Name, Dir: c.Dir, MsgsPerSec: c.Throughput.MsgsPerSec, Counts: c.Counts, PublishLatency: c.PublishLatency,
		EndToEnd: c.EndToEnd, Anomalies: map[string]int64{}, Errors: c.Errors, Verdict: c.Verdict, Faults: len(c.Faults)}
	for k, n := range c.Anomalies {
		if n != 0 {
			r.Anomalies[k] = n
			if c.Informational[k] != "" {
				r.Informational = append(r.Informational, k)
			}
		}
	}
	slices.Sort(r.Informational)
	if r.Errors == nil {
		r.Errors = map[string]int64{}
	}
	return r
}

// driverRank is a driver's place in driverOrder; unknown drivers come last.
func driverRank(d string) int {
	if i := slices.Index(driverOrder, d); i >= 0 {
		return i
	}
	return len(driverOrder)
}

// withoutDriver removes the "driver=..." part from a configuration name made of
// comma-separated key=value parts; "default" when nothing else is left.
func withoutDriver(name string) string {
	var keep []string
	for _, part := range strings.Split(name, ",") {
		if !strings.HasPrefix(part, "driver=") {
			keep = append(keep, part)
		}
	}
	if len(keep) == 0 {
		return "default"
	}
	return strings.Join(keep, ",")
}

// clientVersions adds to versions the client library of every driver s's configurations
// ran, as each run recorded it (the library that ran, not the one this binary has).
func clientVersions(versions map[string]string, s *Summary) {
	for _, c := range s.Configs {
		if lib, v := c.Params["client_library"], c.Params["client_version"]; lib != "" && v != "" {
			versions[lib] = v
		}
	}
}
