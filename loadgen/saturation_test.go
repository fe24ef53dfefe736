package loadgen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kchaos/kchaos/broker/clustertest"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
)

// saturationWorkload is one config at the harness's highest sustainable rate (producerRate 0)
// on an RF=3 topic with min.insync.replicas=2, no consumers and no faults.
func saturationWorkload(t testing.TB, driver, acks string, d time.Duration) workloads.RunConfig {
	t.Helper()
	y := fmt.Sprintf(`name: saturation
topics: 1
partitionsPerTopic: 8
messageSize: 1KiB
producersPerTopic: 2
producerRate: 0
subscriptionsPerTopic: 0
duration: %s
replicationFactor: 3
driver: %s
topicConfig:
  min.insync.replicas: 2
producer:
  acks: "%s"
  linger: 5ms
`, d, driver, acks)
	plan, err := workloads.Parse("saturation.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return plan.Configs[0]
}

// clusterCounters are the cluster's counters of spontaneous failover, summed over brokers.
type clusterCounters struct {
	leaderElections, fencings, truncations float64
}

// scrapeCounters reads the failover counters from every broker's Prometheus endpoint. The
// controller counters are cluster-wide and reported by every controller node alike, so their
// maximum is taken; truncations are per broker and summed.
func scrapeCounters(t testing.TB, c *clustertest.Cluster, ids []int32) clusterCounters {
	t.Helper()
	var out clusterCounters
	for _, id := range ids {
		addr := c.Node(id).MetricsAddr()
		if addr == "" {
			t.Fatalf("broker %d serves no metrics", id)
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("scrape broker %d: %v", id, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("parse metrics of broker %d: %v", id, err)
		}
		value := func(name string) float64 {
			f := fams[name]
			if f == nil || len(f.Metric) == 0 {
				return 0
			}
			m := f.Metric[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
		out.leaderElections = max(out.leaderElections, value("kafka_controller_controllerstats_leaderelections_total"))
		out.fencings = max(out.fencings, value("kchaos_controller_brokerfencings_total"))
		out.truncations += value("kchaos_log_truncations_total")
	}
	return out
}

// peakRSS returns a process's peak resident set (VmHWM) in bytes, or 0 when unknown.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// saturationResult is one config's outcome.
type saturationResult struct {
	rate     float64 // records sent per second
	peakRSS  int64   // largest broker peak RSS, bytes
	counters clusterCounters
}

// saturate runs one config at max rate on c and checks that the cluster did not fail over by
// itself: no leader election, no fencing, no truncation, and with acks=0 every sent record
// drained.
func saturate(t testing.TB, c *clustertest.Cluster, driver, acks string, d time.Duration) saturationResult {
	t.Helper()
	ids := []int32{1, 2, 3}
	before := scrapeCounters(t, c, ids)
	rc := saturationWorkload(t, driver, acks, d)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	hw := history.NewWriter(f)
	ctx, cancel := context.WithTimeout(context.Background(), d+3*time.Minute)
	defer cancel()
	res, err := Run(ctx, rc, Options{Bootstrap: c.Bootstrap(), OutDir: dir, History: hw, Status: io.Discard,
		Logger: slog.New(slog.DiscardHandler), DrainTimeout: 2 * time.Minute})
	if cerr := hw.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	f.Close()
	os.Remove(f.Name()) // GBs at full speed; the counts are in res
	if err != nil {
		t.Fatalf("%s acks=%s: run: %v", driver, acks, err)
	}
	after := scrapeCounters(t, c, ids)
	delta := clusterCounters{after.leaderElections - before.leaderElections, after.fencings - before.fencings, after.truncations - before.truncations}
	out := saturationResult{rate: float64(res.Sent) / res.Elapsed.Seconds(), counters: delta}
	for _, id := range ids {
		out.peakRSS = max(out.peakRSS, peakRSS(c.Node(id).Pid()))
	}
	t.Logf("%s acks=%s: %d sent (%.0f/s), %d acked, %d failed, %d indeterminate, %d drained; leader elections %v, fencings %v, truncations %v; broker peak RSS %d MiB",
		driver, acks, res.Sent, out.rate, res.Acked, res.Failed, res.Indeterminate, res.Drained, delta.leaderElections, delta.fencings, delta.truncations, out.peakRSS>>20)
	if delta != (clusterCounters{}) {
		t.Errorf("%s acks=%s: the cluster failed over with no fault: %+v", driver, acks, delta)
	}
	if acks == "0" && res.Drained != res.Sent {
		// Tell a drain that stopped early from records that never became readable.
		time.Sleep(5 * time.Second)
		var end int64
		if offs, err := kadm.NewClient(c.Client()).ListEndOffsets(context.Background(), res.Topics...); err == nil {
			offs.Each(func(o kadm.ListedOffset) { end += o.Offset })
		}
		t.Errorf("%s acks=0: %d records sent, %d drained, end offsets now sum to %d; with no broken connection none may be lost", driver, res.Sent, res.Drained, end)
	}
	// A closed loop sends each record when it is due: every send has a publish delay of 0
	// (under 1µs), recorded in bulk once per search step and when the producer stops. A
	// search that started sending before the run's start left 3% of its sends unmeasured, and
	// a series loop that ended on a tick whose sample ran past the end lost the last step's
	// (2% in one CI run under the race detector).
	if n, m := res.PublishDelay.TotalCount(), res.PublishDelay.Max(); n != res.Sent || m > 1 {
		t.Errorf("%s acks=%s: publish delays: %d recorded for %d sends, max %dµs; want one per send, all 0", driver, acks, n, res.Sent, m)
	}
	if acks != "0" && res.Failed+res.Indeterminate > 0 {
		t.Errorf("%s acks=%s: %d sends failed and %d are indeterminate with no fault (errors %v)", driver, acks, res.Failed, res.Indeterminate, res.Errors)
	}
	return out
}

// TestSaturationNoSpuriousFailover runs acks=0, 1 and all at the harness's highest rate on a
// 3-broker RF=3 cluster (min.insync.replicas=2) with no fault: a saturated machine must not
// make the cluster fence brokers, move leaders or truncate logs, and acks=0 must lose nothing.
// make bench runs the 30-second version with both drivers (BenchmarkSaturation).
func TestSaturationNoSpuriousFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a 3-broker cluster at full speed")
	}
	c := clustertest.Start(t, 3)
	for _, acks := range []string{"0", "1", "all"} {
		saturate(t, c, "franz-go", acks, 5*time.Second)
	}
}

// BenchmarkSaturation is TestSaturationNoSpuriousFailover at 30 s per config with both
// drivers; it reports records/s and the largest broker peak RSS per config.
func BenchmarkSaturation(b *testing.B) {
	for _, driver := range []string{"franz-go", "sarama"} {
		for _, acks := range []string{"0", "1", "all"} {
			b.Run(fmt.Sprintf("driver=%s,acks=%s", driver, acks), func(b *testing.B) {
				c := clustertest.Start(b, 3)
				var r saturationResult
				for range b.N {
					r = saturate(b, c, driver, acks, 30*time.Second)
				}
				b.ReportMetric(r.rate, "rec/s")
				b.ReportMetric(float64(r.peakRSS>>20), "broker-peak-MiB")
				b.ReportMetric(r.counters.leaderElections+r.counters.fencings+r.counters.truncations, "failovers")
			})
		}
	}
}
