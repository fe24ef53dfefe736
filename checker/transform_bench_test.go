package checker

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeTransformHistory writes a clean consume-transform-produce history: one producer
// sends n inputs to topic "in" (4 partitions), transformer 10 polls them in batches of 50
// and writes each batch's outputs and offsets in one committed transaction, and the drain
// (process 20) reads the output topic. It returns the number of events.
func writeTransformHistory(path string, n int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	i, t := 0, int64(0)
	line := func(format string, args ...any) {
		fmt.Fprintf(w, `{"i":%d,"t":%d,`, i, t)
		fmt.Fprintf(w, format, args...)
		w.WriteString("}\n")
		i++
		t += 10
	}
	line(`"p":-2,"type":"info","f":"run","partition":-1,"offset":-1,"run":{"version":1,"run_id":"bench","seed":1,"start":"2026-01-01T00:00:00Z","acks":"all","idempotent":true,"transactional":true,"isolation_level":"read_committed","commit_mode":"transactional","replication_factor":3,"min_insync":2,"params":{"consumer_mode":"transform"}}`)
	const parts, batch = 4, 50
	next := make([]int64, parts)
	outNext := make([]int64, parts)
	var outs [][3]string
	for b := 0; b*batch < n; b++ {
		lo, hi := b*batch, min(n, (b+1)*batch)
		var recs []string
		for s := lo; s < hi; s++ {
			p := s % parts
			line(`"p":1,"type":"invoke","f":"send","topic":"in","partition":-1,"value":"1-%d","offset":-1`, s)
			line(`"p":1,"type":"ok","f":"send","topic":"in","partition":%d,"value":"1-%d","offset":%d`, p, s, next[p])
			recs = append(recs, fmt.Sprintf(`[%d,%d,"1-%d"]`, p, next[p], s))
			next[p]++
		}
		line(`"p":10,"type":"ok","f":"poll","topic":"in","partition":-1,"offset":-1,"records":[%s]`, strings.Join(recs, ","))
		txn := b + 1
		line(`"p":10,"type":"ok","f":"txn","partition":-1,"offset":-1,"txn_id":%d,"txn":{"op":"begin"}`, txn)
		for s := lo; s < hi; s++ {
			p := s % parts
			v := "1-" + strconv.Itoa(s) + "/10-" + strconv.Itoa(s)
			line(`"p":10,"type":"invoke","f":"send","topic":"out","partition":-1,"value":%q,"offset":-1,"txn_id":%d`, v, txn)
			line(`"p":10,"type":"ok","f":"send","topic":"out","partition":%d,"value":%q,"offset":%d,"txn_id":%d`, p, v, outNext[p], txn)
			outs = append(outs, [3]string{strconv.Itoa(p), strconv.FormatInt(outNext[p], 10), v})
			outNext[p]++
		}
		line(`"p":10,"type":"invoke","f":"txn","partition":-1,"offset":-1,"txn_id":%d,"txn":{"op":"commit"}`, txn)
		var offs []string
		for p := range parts {
			offs = append(offs, fmt.Sprintf("[%d,%d]", p, next[p]))
		}
		line(`"p":10,"type":"ok","f":"commit","topic":"in","partition":-1,"offset":-1,"txn_id":%d,"offsets":[%s]`, txn, strings.Join(offs, ","))
		line(`"p":10,"type":"ok","f":"txn","partition":-1,"offset":-1,"txn_id":%d,"txn":{"op":"commit"}`, txn)
		line(`"p":10,"type":"ok","f":"process","topic":"in","partition":-1,"offset":-1,"records":[%s]`, strings.Join(recs, ","))
	}
	for p := range parts {
		line(`"p":20,"type":"ok","f":"assign","topic":"out","partition":-1,"offset":-1,"offsets":[[%d,0]]`, p)
	}
	for lo := 0; lo < len(outs); lo += batch {
		var recs []string
		for _, o := range outs[lo:min(len(outs), lo+batch)] {
			recs = append(recs, fmt.Sprintf(`[%s,%s,%q]`, o[0], o[1], o[2]))
		}
		line(`"p":20,"type":"ok","f":"poll","topic":"out","partition":-1,"offset":-1,"records":[%s]`, strings.Join(recs, ","))
	}
	return i, w.Flush()
}

// TestTransformHistoryIsClean: the generated consume-transform-produce history is exactly
// once; dropping one output read makes one missing output.
func TestTransformHistoryIsClean(t *testing.T) {
	p := filepath.Join(t.TempDir(), "history.jsonl")
	if _, err := writeTransformHistory(p, 1000); err != nil {
		t.Fatal(err)
	}
	res, err := CheckFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range AnomalyNames {
		if c := res.Count(n); c != 0 {
			t.Errorf("%s: %d: %+v", n, c, res.Anomalies[n].Examples)
		}
	}
	if res.Stats.Outputs != 1000 || res.Stats.OutputsRead != 1000 {
		t.Errorf("outputs %d read %d, want 1000 each", res.Stats.Outputs, res.Stats.OutputsRead)
	}
}

// BenchmarkCheckTransform measures the checker over a consume-transform-produce history
// (inputs, transactional outputs, drain); KCHAOS_BENCH_INPUTS sets the inputs (default
// 1,000,000: about 4.1M events). Output values are not in the dense "<producer>-<seq>" form,
// so they take the checker's string-keyed path. Wall time depends on what else the machine
// runs; cpu-s/op is the checker's CPU time (decoding runs in parallel with the analyses).
func BenchmarkCheckTransform(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("KCHAOS_BENCH_INPUTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	b.Run("inputs="+strconv.Itoa(n), func(b *testing.B) {
		p := filepath.Join(b.TempDir(), "history.jsonl")
		events, err := writeTransformHistory(p, n)
		if err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(p)
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
			if res.Count(MissingOutput)+res.Count(DuplicateOutput) != 0 || res.Stats.OutputsRead != int64(n) {
				b.Fatalf("generated history not exactly once: %+v", res.Stats)
			}
		}
		b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(worst.Seconds(), "worst-s")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-rss-MiB")
	})
}
