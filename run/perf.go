package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/workloads"
)

// measurePerformance runs rc's performance steps (workloads.PerformanceConfig) against
// bootstrap before the run proper, with no fault in force: the capacity search, then each
// offered load in increasing order. Every step is a load of its own through opts.Load, on
// topics of its own that the load deletes after it, with no history; its files go to
// dir/performance/STEP. It writes rundir.PerformanceFile into dir.
func measurePerformance(ctx context.Context, rc workloads.RunConfig, dir string, bootstrap []string, client *clientconfig.Config, stopLoad <-chan struct{}, opts Options) (*rundir.Performance, error) {
	pc := rc.Performance
	perf := &rundir.Performance{}
	step := func(name string, rate float64, warmup, d time.Duration) (*rundir.Result, error) {
		job := rc
		job.Performance, job.Chaos = nil, nil
		job.ProducerRate, job.Warmup, job.Duration = rate, workloads.Duration(warmup), workloads.Duration(d)
		job.Config = rc.Config + "/performance/" + name
		out := filepath.Join(dir, "performance", configDir(name))
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, err
		}
		res, err := opts.Load.Run(ctx, LoadJob{Config: job, RunID: newRunID(), Bootstrap: bootstrap, Client: client, OutDir: out,
			Measure: true, Stop: stopLoad, Logger: opts.Logger, Status: io.Discard})
		if err != nil {
			return nil, fmt.Errorf("performance step %s: %w", name, err)
		}
		return res, nil
	}
	res, err := step("capacity", 0, 0, time.Duration(pc.Capacity))
	if err != nil {
		return nil, err
	}
	perf.Capacity = res.MaxRate
	perf.CapacityMBps = res.MaxRate * float64(rc.MessageSize) / 1e6
	perf.CapacityLatency = res.Percentiles["publish-latency"]
	perf.CapacityErrors = res.Errors
	fmt.Fprintf(opts.Status, "performance: capacity %.0f records/s (%.1f MB/s), publish latency at capacity p50 %s p99 %s\n",
		perf.Capacity, perf.CapacityMBps, micros(perf.CapacityLatency.P50), micros(perf.CapacityLatency.P99))
	type load struct {
		name string
		rate float64
	}
	var loads []load
	for _, f := range pc.Loads {
		loads = append(loads, load{strconv.FormatFloat(f, 'f', -1, 64) + "x", f * perf.Capacity})
	}
	for _, r := range pc.Rates {
		loads = append(loads, load{strconv.FormatFloat(r, 'f', -1, 64) + "/s", r})
	}
	slices.SortStableFunc(loads, func(a, b load) int {
		switch {
		case a.rate < b.rate:
			return -1
		case a.rate > b.rate:
			return 1
		}
		return 0
	})
	for _, l := range loads {
		if l.rate < 1 {
			continue // a capacity of nothing: the cluster could not take records at all
		}
		res, err := step(l.name, l.rate, time.Duration(pc.Warmup), time.Duration(pc.Step-pc.Warmup))
		if err != nil {
			return nil, err
		}
		p := rundir.LoadPoint{Name: l.name, Offered: l.rate, Publish: res.Percentiles["publish-latency"],
			EndToEnd: res.Percentiles["end-to-end"], Errors: res.Errors}
		if secs := time.Duration(pc.Step - pc.Warmup).Seconds(); secs > 0 {
			p.Achieved = float64(p.Publish.Count) / secs
		}
		perf.Points = append(perf.Points, p)
		fmt.Fprintf(opts.Status, "performance: load %s (%.0f/s): achieved %.0f/s, publish latency p50 %s p99 %s p99.9 %s max %s\n",
			l.name, l.rate, p.Achieved, micros(p.Publish.P50), micros(p.Publish.P99), micros(p.Publish.P999), micros(p.Publish.Max))
	}
	b, err := json.MarshalIndent(perf, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, rundir.PerformanceFile), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return perf, nil
}

// newRunID returns a fresh run id: it names a run's topics and tags its records.
func newRunID() string {
	var rid [8]byte
	rand.Read(rid[:])
	return hex.EncodeToString(rid[:])
}

// micros formats a latency in microseconds for status lines.
func micros(us int64) string {
	return (time.Duration(us) * time.Microsecond).Round(10 * time.Microsecond).String()
}
