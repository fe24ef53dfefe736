package checker

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestSynthHistoryIsClean: the synthetic history the benchmark uses has no anomaly, and the
// checker sees every operation in it.
func TestSynthHistoryIsClean(t *testing.T) {
	const seed = 7
	t.Logf("seed: %d", seed)
	p := filepath.Join(t.TempDir(), "history.jsonl")
	ops, _, err := writeSynthHistory(p, synthOptions{Ops: 20000, Producers: 8, Partitions: 8, Keys: 100, PollSize: 20, Seed: seed, MetaEvery: 1000, FaultEvery: 10000})
	if err != nil {
		t.Fatal(err)
	}
	res, err := CheckFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range AnomalyNames {
		if n == Unseen { // the tail of each partition was never polled
			continue
		}
		if c := res.Count(n); c != 0 {
			t.Errorf("%s: %d: %+v", n, c, res.Anomalies[n].Examples)
		}
	}
	got := res.Stats.SendsOK + res.Stats.Polls*2 + res.Stats.Commits
	if got != ops {
		t.Errorf("checker saw %d operations, generator wrote %d", got, ops)
	}
	if len(res.Faults) == 0 || res.Stats.MetaSamples == 0 {
		t.Errorf("no faults or ISR samples: %+v", res.Stats)
	}
}

// BenchmarkCheckLinear measures the linear analyses over a generated history; the size comes
// from KCHAOS_BENCH_OPS (default 10,000,000 operations, each a send's invoke+ok, a poll, a
// process or a commit: about 19M events). The target is ≤ 10 s and ≤ 2 GiB peak RSS for 10M
// operations on a 2-core machine. Wall time depends on what else the machine runs, so the
// benchmark judges time by CPU: it fails when CPU time / GOMAXPROCS exceeds 10 s (the wall time
// on an idle machine at best), or when peak RSS exceeds 2 GiB.
func BenchmarkCheckLinear(b *testing.B) {
	ops := 10_000_000
	if s := os.Getenv("KCHAOS_BENCH_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		ops = n
	}
	for _, txn := range []int{0, 20} {
		benchCheck(b, ops, txn)
	}
}

// benchCheck is one BenchmarkCheckLinear case: txn > 0 makes the producers transactional
// (transactions of txn sends), so the dependency graph and every cycle search run too; the
// targets are the same.
func benchCheck(b *testing.B, ops, txn int) {
	name := "ops=" + strconv.Itoa(ops)
	if txn > 0 {
		name += ",txn=" + strconv.Itoa(txn)
	}
	b.Run(name, func(b *testing.B) {
		p := filepath.Join(b.TempDir(), "history.jsonl")
		t0 := time.Now()
		wrote, events, err := writeSynthHistory(p, synthOptions{Ops: ops, Producers: 16, Partitions: 16, Keys: 1000, PollSize: 20, Seed: 1, MetaEvery: 100_000, FaultEvery: 1_000_000, TxnSize: txn})
		if err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(p)
		b.Logf("generated %d ops, %d events, %d MiB in %s", wrote, events, st.Size()>>20, time.Since(t0).Round(time.Millisecond))
		b.SetBytes(st.Size())
		b.ResetTimer()
		var worst time.Duration
		cpu0 := cpuTime()
		for range b.N {
			start := time.Now()
			res, err := CheckFile(p)
			if err != nil {
				b.Fatal(err)
			}
			worst = max(worst, time.Since(start))
			for _, n := range []string{Lost, G1c, G1cProcess, G1cRealtime, PrecommittedRead, UncommittedRead} {
				if c := res.Count(n); c != 0 {
					b.Fatalf("synthetic history has %d %s", c, n)
				}
			}
			if g := res.Graph; txn > 0 {
				if g == nil || g.Edges["ww"] == 0 || g.Edges["realtime"] == 0 {
					b.Fatalf("transactional history without a dependency graph: %+v", g)
				}
				b.Logf("graph: %d nodes, edges %v; G0 %d (informational), G1c %d", g.Nodes, g.Edges, res.Count(G0), res.Count(G1c))
			}
		}
		b.StopTimer()
		cpu := (cpuTime() - cpu0) / time.Duration(b.N)
		rss := peakRSS()
		b.ReportMetric(cpu.Seconds(), "cpu-s/check")
		b.ReportMetric(float64(worst.Milliseconds()), "ms/check")
		b.ReportMetric(float64(rss>>20), "peak-RSS-MiB")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*events), "ns/event")
		b.Logf("check: %s wall, %s CPU, %d MiB peak RSS (the machine's other load shows as wall > CPU/2)", worst, cpu, rss>>20)
		idleWall := cpu / time.Duration(runtime.GOMAXPROCS(0))
		if ops >= 10_000_000 && (idleWall > 10*time.Second || rss > 2<<30) {
			b.Errorf("10M operations: %s CPU (≥ %s wall on an idle machine) and %d MiB peak RSS, want ≤ 10s and ≤ 2048 MiB", cpu, idleWall, rss>>20)
		}
	})
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestSynthLinearizable: porcupine decides a clean synthetic history of 50k operations within
// its time limit, partition by partition.
func TestSynthLinearizable(t *testing.T) {
	const seed = 11
	t.Logf("seed: %d", seed)
	p := filepath.Join(t.TempDir(), "history.jsonl")
	if _, _, err := writeSynthHistory(p, synthOptions{Ops: 50000, Producers: 8, Partitions: 8, Keys: 100, PollSize: 20, Seed: seed, MetaEvery: 1000, FaultEvery: 10000}); err != nil {
		t.Fatal(err)
	}
	lr, err := CheckLinearizableFile(p, LinearOptions{Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if lr.Result != LinearOK || len(lr.Partitions) != 8 {
		t.Fatalf("got %s over %d partitions: %+v", lr.Result, len(lr.Partitions), lr)
	}
	t.Logf("porcupine: %d partitions in %s", len(lr.Partitions), lr.Elapsed)
}

// TestSynthTxnHistoryIsClean: the transactional synthetic history of the benchmark builds a
// dependency graph and shows none of the anomalies read_committed forbids.
func TestSynthTxnHistoryIsClean(t *testing.T) {
	const seed = 5
	t.Logf("seed: %d", seed)
	p := filepath.Join(t.TempDir(), "history.jsonl")
	if _, _, err := writeSynthHistory(p, synthOptions{Ops: 20000, Producers: 8, Partitions: 8, Keys: 100, PollSize: 20, Seed: seed, MetaEvery: 1000, FaultEvery: 10000, TxnSize: 20}); err != nil {
		t.Fatal(err)
	}
	res, err := CheckFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Graph == nil || res.Graph.Transactions == 0 || res.Graph.Edges["realtime"] == 0 {
		t.Fatalf("graph %+v", res.Graph)
	}
	for _, n := range []string{Lost, AbortedRead, UncommittedRead, PrecommittedRead, G1c, G1cProcess, G1cRealtime, IntNonmonotonicSend, NonmonotonicSend} {
		if c := res.Count(n); c != 0 {
			t.Errorf("%s: %d: %+v", n, c, res.Anomalies[n].Examples)
		}
	}
	t.Logf("graph %+v, G0 %d", res.Graph, res.Count(G0))
}
