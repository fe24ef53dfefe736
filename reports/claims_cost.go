package reports

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/kchaos/kchaos/checker"
)

// Claim 7 compares what settings cost, from each configuration's performance steps (no
// fault in force): its capacity, and its publish latency at an offered load every
// configuration ran. Two configurations are compared when they differ in acks, batch size
// or linger alone: acks by capacity and latency, batch size by capacity, linger by its
// latency cost (at capacity batches fill without lingering, so linger's throughput gain does
// not show there; its capacity is reported, and only a drop refutes). A difference within
// the noise margins decides nothing.
const (
	// capacityMargin is the relative capacity difference below which two capacities are
	// the same: 15%, the spread of repeated capacity searches of one configuration on a busy
	// two-core machine.
	capacityMargin = 0.15
	// latencyMargin and latencyFloorMs: two p50 latencies are the same unless they differ
	// by more than 10% and 0.1 ms.
	latencyMargin  = 0.10
	latencyFloorMs = 0.1
	// drainMargin is how much faster a safe consumer mode must drain a backlog for claim 17
	// to hold: 10%.
	drainMargin = 0.10
)

var rule7 = rule{id: 7, text: "Throughput falls and latency rises from acks=0 to acks=1 to acks=all; larger batches and linger raise throughput at some latency cost.",
	anomaly: "cost differences", all: true,
	faults: func(in *ClaimInput) string {
		return want(param(in, "performance") == "true", "a performance section (capacity and latency with no fault in force)")
	},
	judge: judgeCost, measures: true}

// costParams are the settings two configurations must share to be compared.
var costParams = []string{"acks", "batch_size", "linger", "compression", "message_size", "enable.idempotence", "max.in.flight",
	"replication.factor", "min.insync.replicas", "partitions", "producers", "driver"}

// costs is one configuration's performance over its trials, with figures from steps that
// met errors (a failover: a leader moved, a broker was fenced) left out.
type costs struct {
	config   string
	params   map[string]string
	capacity []float64
	// p50 holds the publish p50 (ms) at each absolute offered load ("2000/s").
	p50 map[string][]float64
	// disturbed counts the figures left out.
	disturbed int
}

func costsOf(cs []*ConfigSummary) []*costs {
	var out []*costs
	by := map[string]*costs{}
	for _, c := range cs {
		if c.Performance == nil {
			continue
		}
		k := by[c.Config]
		if k == nil {
			k = &costs{config: c.Config, params: c.Params, p50: map[string][]float64{}}
			by[c.Config] = k
			out = append(out, k)
		}
		p := c.Performance
		if len(p.CapacityErrors) > 0 {
			k.disturbed++
		} else if p.Capacity > 0 {
			k.capacity = append(k.capacity, p.Capacity)
		}
		for _, pt := range p.Points {
			switch {
			case !strings.HasSuffix(pt.Name, "/s") || pt.Publish == nil:
			case len(pt.Errors) > 0:
				k.disturbed++
			default:
				k.p50[pt.Name] = append(k.p50[pt.Name], pt.Publish.P50)
			}
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// order ranks a setting's values in the direction the claim predicts gets slower: acks 0,
// 1, all; then batch sizes and lingers by their size (larger is predicted faster for batch
// size, slower per record for linger).
func settingRank(setting, v string) float64 {
	if setting == "acks" {
		return float64(map[string]int{"0": 0, "1": 1, "all": 2, "-1": 2}[v])
	}
	return float64(sizeOrDuration(v))
}

// sizeOrDuration orders "16KiB" and "5ms" values by magnitude.
func sizeOrDuration(v string) int64 {
	var n float64
	var unit string
	fmt.Sscanf(v, "%g%s", &n, &unit)
	mult := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "KB": 1e3, "MB": 1e6, "ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[unit]
	if mult == 0 {
		mult = 1
	}
	return int64(n * mult)
}

// differsIn returns the one cost setting a and b differ in, or "".
func differsIn(a, b map[string]string) string {
	diff := ""
	for _, k := range costParams {
		if a[k] == b[k] {
			continue
		}
		if diff != "" || (k != "acks" && k != "batch_size" && k != "linger") {
			return ""
		}
		diff = k
	}
	return diff
}

// commonRate is the highest absolute offered load both ran undisturbed, "" for none.
func commonRate(a, b *costs) string {
	best, bestRate := "", -1.0
	for name := range a.p50 {
		if _, ok := b.p50[name]; !ok {
			continue
		}
		var r float64
		fmt.Sscanf(name, "%g/s", &r)
		if r > bestRate {
			best, bestRate = name, r
		}
	}
	return best
}

// judgeCost judges claim 7 pair by pair.
func judgeCost(r *rule, x *experiment) ClaimResult {
	res := ClaimResult{}
	ks := costsOf(x.all)
	held, refuted := 0, 0
	for i, a := range ks {
		for _, b := range ks[i+1:] {
			setting := differsIn(a.params, b.params)
			if setting == "" {
				continue
			}
			weak, strong := a, b
			if settingRank(setting, a.params[setting]) > settingRank(setting, b.params[setting]) {
				weak, strong = b, a
			}
			p := comparePair(setting, weak, strong)
			switch p.Status {
			case ClaimHeld:
				held++
			case ClaimRefuted:
				refuted++
			}
			res.Pairs = append(res.Pairs, p)
		}
	}
	var parts []string
	for _, p := range res.Pairs {
		parts = append(parts, fmt.Sprintf("%s: %s (%s)", p.Setting, p.Status, p.Measured))
	}
	disturbed := 0
	for _, k := range ks {
		disturbed += k.disturbed
	}
	switch {
	case len(res.Pairs) == 0:
		res.Status = ClaimUnknown
		res.Tried = "no two configurations with performance figures differ in acks, batch size or linger alone"
	case refuted > 0:
		res.Status = ClaimRefuted
	case held == len(res.Pairs):
		res.Status = ClaimHeld
	default:
		res.Status = ClaimUnknown
		res.Tried = "some pairs differ by less than the noise margins"
	}
	res.Measured = strings.Join(parts, "; ")
	if disturbed > 0 {
		res.Measured += fmt.Sprintf("; %d performance figures met errors (a failover) and were left out", disturbed)
	}
	if res.Measured == "" {
		res.Measured = res.Tried
	}
	return res
}

// comparePair compares weak with strong, which the claim predicts is slower.
func comparePair(setting string, weak, strong *costs) PairResult {
	p := PairResult{Setting: fmt.Sprintf("%s %s → %s", setting, weak.params[setting], strong.params[setting]), Weaker: weak.config, Stronger: strong.config}
	cw, cs := median(weak.capacity), median(strong.capacity)
	capNote, capVerdict := "capacity not measured undisturbed", 0
	if !math.IsNaN(cw) && !math.IsNaN(cs) && cs > 0 {
		d := (cw - cs) / cs
		capNote = fmt.Sprintf("capacity %.0f vs %.0f records/s", cw, cs)
		switch {
		case d > capacityMargin:
			capVerdict = 1
		case d < -capacityMargin:
			capVerdict = -1
		}
	}
	latNote, latVerdict := "no common offered load", 0
	if rate := commonRate(weak, strong); rate != "" {
		lw, ls := median(weak.p50[rate]), median(strong.p50[rate])
		latNote = fmt.Sprintf("publish p50 at %s %.2f vs %.2f ms", rate, lw, ls)
		gap := math.Max(latencyMargin*math.Min(lw, ls), latencyFloorMs)
		switch {
		case ls-lw > gap:
			latVerdict = 1
		case lw-ls > gap:
			latVerdict = -1
		}
	}
	p.Measured = capNote + ", " + latNote
	switch setting {
	case "batch_size":
		// Larger batches raise throughput: the larger one is "weak" here (ranked by size).
		capVerdict = -capVerdict
		p.Status = verdictOf(capVerdict, 0)
	case "linger":
		// Linger costs latency; it must not cost throughput.
		capVerdict = -capVerdict
		if capVerdict > 0 {
			capVerdict = 0
		}
		p.Status = verdictOf(latVerdict, capVerdict)
	default:
		p.Status = verdictOf(capVerdict, latVerdict)
	}
	return p
}

// verdictOf: refuted when a measure contradicts the claim, held when none does and one
// agrees beyond its margin, else unknown.
func verdictOf(vs ...int) string {
	agree := false
	for _, v := range vs {
		if v < 0 {
			return ClaimRefuted
		}
		agree = agree || v > 0
	}
	if agree {
		return ClaimHeld
	}
	return ClaimUnknown
}

var rule17 = rule{id: 17, text: "A slow consumer builds lag; batch processing and asynchronous processing with batched commits drain a backlog faster.",
	anomaly: "a backlog drained slower",
	unsafe: func(in *ClaimInput) string {
		return want(param(in, "consumer_mode") == "group", "consumer.mode group (one processing call per record)")
	},
	safe: func(in *ClaimInput) string {
		m := param(in, "consumer_mode")
		return want(m == "batch" || m == "async", "consumer.mode batch or async")
	},
	faults: func(in *ClaimInput) string {
		return want(param(in, "processing_time") != "0s" || param(in, "processing_overhead") != "0s", "a processing cost (consumer.processingTime or processingOverhead)")
	},
	judge: judgeDrain, measures: true}

// drainOf is a backlog's drain time in seconds; a backlog never drained counts as the
// whole time the consumers had.
func drainOf(b *Backlog) float64 {
	if b.Drain >= 0 {
		return b.Drain
	}
	return b.Until - b.Stop
}

// judgeDrain judges claim 17: each safe consumer mode must drain the backlog the unsafe one
// builds faster.
func judgeDrain(r *rule, x *experiment) ClaimResult {
	res := ClaimResult{}
	drains := map[string][]float64{}
	side := func(c *ConfigSummary) (int64, string) {
		b := c.Backlog
		if b == nil {
			return 0, c.Name + ": no lag series"
		}
		d := drainOf(b)
		drains[c.Config] = append(drains[c.Config], d)
		drained := fmt.Sprintf("drained in %.1fs", d)
		if b.Drain < 0 {
			drained = fmt.Sprintf("not drained in %.1fs", d)
		}
		return b.AtStop, fmt.Sprintf("%s: lag %d at the producers' stop (max %d), %s; on the consumer crashes %d processed twice, %d committed unprocessed",
			c.Name, b.AtStop, b.MaxLag, drained, c.Anomalies[checker.ProcessedTwice], c.Anomalies[checker.CommittedUnprocessed])
	}
	res.Unsafe = walkSide(x.unsafe, x.decl.Unsafe, x.trials, side)
	res.Safe = walkSide(x.safe, x.decl.Safe, x.trials, side)
	slowest := 0.0
	for _, n := range res.Unsafe.Configs {
		slowest = math.Max(slowest, median(drains[n]))
	}
	faster, slower := 0, 0
	var cmp []string
	for _, n := range res.Safe.Configs {
		d := median(drains[n])
		cmp = append(cmp, fmt.Sprintf("%s %.1fs", n, d))
		switch {
		case d <= slowest*(1-drainMargin):
			faster++
		case d >= slowest:
			slower++
		}
	}
	switch {
	case res.Unsafe.Observed == 0:
		res.Status = ClaimUnknown
		res.Tried = fmt.Sprintf("%s: the unsafe side built no backlog (it kept up with the producers)", trialsText(len(x.trials)))
	case slower > 0:
		res.Status = ClaimRefuted
	case faster == len(res.Safe.Configs) && faster > 0:
		res.Status = ClaimHeld
	default:
		res.Status = ClaimUnknown
		res.Tried = "a safe mode drained less than 10% faster"
	}
	res.Measured = fmt.Sprintf("median drain time: unsafe %s %.1fs, safe %s [%s]; unsafe: %s; safe: %s", res.Unsafe.Match, slowest, res.Safe.Match,
		strings.Join(cmp, ", "), strings.Join(res.Unsafe.Evidence, "; "), strings.Join(res.Safe.Evidence, "; "))
	return res
}
