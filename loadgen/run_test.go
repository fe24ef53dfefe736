package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/workloads"
)

// smokeConfig returns the shipped smoke workload's only config, adjusted by edit.
func smokeConfig(t *testing.T, edit func(*workloads.RunConfig)) workloads.RunConfig {
	t.Helper()
	plan, err := workloads.Open("smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rc := plan.Configs[0]
	rc.Duration = workloads.Duration(1500 * time.Millisecond)
	if edit != nil {
		edit(&rc)
	}
	return rc
}

// replay is what a history file says, counted independently of the load generator.
type replay struct {
	header                              *history.Run
	invokes, ok, fail, info             int64
	drained                             map[string]bool
	polled, processed, commits, assigns int64
}

func readHistory(t *testing.T, path string, drainProc int) replay {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := history.NewReader(f, path)
	rp := replay{drained: map[string]bool{}}
	var e history.Event
	for i := 0; ; i++ {
		err := rd.Next(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if e.F != history.FRun || e.Run == nil {
				t.Fatalf("first event is %s, want the run header", e.F)
			}
			rp.header = e.Run
			continue
		}
		if e.Index != int64(i) {
			t.Fatalf("event %d has index %d", i, e.Index)
		}
		switch {
		case e.F == history.FSend && e.Type == history.Invoke:
			rp.invokes++
		case e.F == history.FSend && e.Type == history.OK:
			rp.ok++
		case e.F == history.FSend && e.Type == history.Fail:
			rp.fail++
		case e.F == history.FSend && e.Type == history.Info:
			rp.info++
		case e.F == history.FPoll && e.Process == drainProc:
			for _, r := range e.Records {
				rp.drained[r.Value] = true
			}
		case e.F == history.FPoll:
			rp.polled += int64(len(e.Records))
		case e.F == history.FProcess:
			rp.processed += int64(len(e.Records))
		case e.F == history.FCommit:
			rp.commits++
		case e.F == history.FAssign:
			rp.assigns++
		}
	}
	return rp
}

func runWithHistory(t *testing.T, rc workloads.RunConfig, bootstrap []string) (*rundir.Result, string, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	hw := history.NewWriter(f)
	var status bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, rc, Options{Bootstrap: bootstrap, OutDir: dir, History: hw, Status: &status,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CatchUpTimeout: 10 * time.Second, DrainTimeout: 20 * time.Second})
	if cerr := hw.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	f.Close()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, path, status.String()
}

func TestDriversEndToEnd(t *testing.T) {
	t.Parallel()
	for _, target := range targets {
		for _, driver := range allDrivers {
			for _, mode := range []string{workloads.ModeGroup, workloads.ModeAssign, workloads.ModeBatch, workloads.ModeAsync} {
				if !target.modes[mode] {
					continue
				}
				testDriverEndToEnd(t, target.name, target.bootstrap, driver, mode)
			}
		}
	}
}

func testDriverEndToEnd(t *testing.T, targetName string, bootstrap func(testing.TB) []string, driver, mode string) {
	t.Run("broker="+targetName+",driver="+driver+",mode="+mode, func(t *testing.T) {
		if mode != workloads.ModeGroup && mode != workloads.ModeAssign && testing.Short() {
			t.Skip("short: only group and assign modes")
		}
		rc := smokeConfig(t, func(rc *workloads.RunConfig) {
			rc.Driver = driver
			rc.Consumer.Mode = mode
			rc.Consumer.BatchSize = 50
		})
		res, path, status := runWithHistory(t, rc, bootstrap(t))
		t.Logf("%s: sent %d acked %d drained %d polled %d processed %d commits %d p99 %dus",
			rc.Config, res.Sent, res.Acked, res.Drained, res.Polled, res.Processed, res.Commits, res.Percentiles["publish-latency"].P99)
		if res.Sent < 200 || res.Sent != res.Acked || res.Acked != res.Drained || res.Failed != 0 || res.Indeterminate != 0 {
			t.Fatalf("counts: sent %d acked %d failed %d indeterminate %d drained %d", res.Sent, res.Acked, res.Failed, res.Indeterminate, res.Drained)
		}
		if res.Processed < res.Sent || res.Polled < res.Sent {
			t.Errorf("consumers polled %d processed %d of %d", res.Polled, res.Processed, res.Sent)
		}
		if res.Commits == 0 {
			t.Error("manual-after-processing made no commits")
		}
		if len(res.Errors) != 0 {
			t.Errorf("errors: %v", res.Errors)
		}
		drainProc := rc.Topics*rc.ProducersPerTopic + rc.Topics**rc.SubscriptionsPerTopic*rc.ConsumerPerSubscription
		rp := readHistory(t, path, drainProc)
		if rp.invokes != res.Sent || rp.ok != res.Acked || rp.fail != res.Failed || rp.info != res.Indeterminate ||
			int64(len(rp.drained)) != res.Drained || rp.polled != res.Polled || rp.processed != res.Processed || rp.commits != res.Commits {
			t.Errorf("history replay %+v differs from result %+v", rp, res)
		}
		if rp.header.Driver != driver || rp.header.Acks != "all" || rp.header.RunID != res.RunID || rp.assigns == 0 {
			t.Errorf("header %+v, assigns %d", rp.header, rp.assigns)
		}
		if res.Percentiles["end-to-end"].Count == 0 || res.Percentiles["publish-latency"].Count != res.Acked {
			t.Errorf("histograms: %+v", res.Percentiles)
			for _, s := range res.Series {
				t.Logf("series: t=%.3f sent %d acked %d p99 %dus", s.T, s.Sent, s.Acked, s.P99Micros)
			}
		}
		if len(res.Series) < 1 || status == "" {
			t.Errorf("series %d points, status %q", len(res.Series), status)
		}
		for _, name := range []string{"publish-latency.hlog", "end-to-end.hlog", "result.json", "series.json"} {
			if st, err := os.Stat(filepath.Join(filepath.Dir(path), name)); err != nil || st.Size() == 0 {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

func TestDriverSettings(t *testing.T) {
	t.Parallel()
	for _, driver := range allDrivers {
		for _, tc := range []struct {
			name string
			edit func(*workloads.RunConfig)
		}{
			{"acks=0", func(rc *workloads.RunConfig) { rc.Producer.Acks = "0" }},
			{"acks=1,compression=lz4,keys=round-robin", func(rc *workloads.RunConfig) {
				rc.Producer.Acks, rc.Producer.Compression = "1", "lz4"
				rc.Keys = &workloads.KeysConfig{Distinct: 10, Distribution: workloads.DistRoundRobin}
			}},
			{"idempotence,compression=zstd,keys=zipf", func(rc *workloads.RunConfig) {
				rc.Producer.Idempotence, rc.Producer.Compression = true, "zstd"
				rc.Keys = &workloads.KeysConfig{Distinct: 50, Distribution: workloads.DistZipf, S: 1.2}
			}},
			{"commit=auto,read_committed", func(rc *workloads.RunConfig) {
				rc.Consumer.Commit, rc.Consumer.IsolationLevel = workloads.CommitAuto, "read_committed"
				rc.Consumer.AutoCommitInterval = workloads.Duration(100 * time.Millisecond)
			}},
		} {
			rc := smokeConfig(t, func(rc *workloads.RunConfig) {
				rc.Driver = driver
				rc.Duration = workloads.Duration(time.Second)
				tc.edit(rc)
			})
			if rc.Producer.Idempotence && !slices.Contains(txnDrivers, driver) {
				continue // kafka-go has no idempotent producer (workloads refuses it)
			}
			t.Run("driver="+driver+","+tc.name, func(t *testing.T) {
				res, path, _ := runWithHistory(t, rc, testBootstrap(t))
				drainProc := 2
				rp := readHistory(t, path, drainProc)
				if rc.Producer.Acks == "0" {
					// acks=0: no outcome is known; every send is indeterminate.
					if res.Indeterminate != res.Sent || res.Acked != 0 || rp.info != res.Sent {
						t.Fatalf("acks=0: sent %d acked %d indeterminate %d (history info %d)", res.Sent, res.Acked, res.Indeterminate, rp.info)
					}
				} else if res.Acked != res.Sent || rp.ok != res.Sent {
					t.Fatalf("sent %d acked %d (history ok %d) errors %v", res.Sent, res.Acked, rp.ok, res.Errors)
				}
				if res.Drained != res.Sent || int64(len(rp.drained)) != res.Drained || res.Processed < res.Sent {
					t.Fatalf("sent %d drained %d (history %d) processed %d", res.Sent, res.Drained, len(rp.drained), res.Processed)
				}
			})
		}
	}
}

// TestRecordTimestampIsSendTime: a record's timestamp (CreateTime) is the time the harness
// sent it, which it hands the client instead of letting it read the clock again: never before
// the intended send time in the record's header, never after the run returned.
func TestRecordTimestampIsSendTime(t *testing.T) {
	t.Parallel()
	for _, driver := range allDrivers {
		t.Run("driver="+driver, func(t *testing.T) {
			bootstrap := testBootstrap(t)
			rc := smokeConfig(t, func(rc *workloads.RunConfig) {
				rc.Driver = driver
				rc.Duration = workloads.Duration(time.Second)
			})
			res, path, _ := runWithHistory(t, rc, bootstrap)
			end := time.Now()
			n := readRecords(t, bootstrap, readHistory(t, path, 2).header.Topics, res.Sent, func(r *kgo.Record) {
				h, err := DecodeHeader(r.Value)
				if err != nil {
					t.Fatalf("record at %s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
				}
				intended := time.Unix(0, h.IntendedUnixNano).Truncate(time.Millisecond)
				if r.Timestamp.Before(intended) || r.Timestamp.After(end) {
					t.Fatalf("record %d/%d: timestamp %v, intended %v, run ended %v", h.ProducerID, h.Sequence, r.Timestamp, intended, end)
				}
			})
			if n != res.Sent {
				t.Fatalf("read %d of %d records", n, res.Sent)
			}
		})
	}
}

// TestPayloadAfterHeader: every record's value carries the workload's payload after its
// header — the payload file's bytes repeated, the producer's random bytes, or zeros — also
// for the records sent in reused values (1,000 records at 1,000/s reuse each value many
// times), so a reused value keeps its payload and gets only a new header.
func TestPayloadAfterHeader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "payload.bin")
	if err := os.WriteFile(file, []byte("kchaos-payload-"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*workloads.RunConfig)
	}{
		{"zeros", func(*workloads.RunConfig) {}},
		{"file", func(rc *workloads.RunConfig) { rc.PayloadFile = file }},
		{"random", func(rc *workloads.RunConfig) { rc.UseRandomizedPayloads = true }},
		{"pool", func(rc *workloads.RunConfig) {
			rc.UseRandomizedPayloads, rc.RandomBytesRatio, rc.RandomizedPayloadPoolSize = true, 0.25, 4
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bootstrap := testBootstrap(t)
			rc := smokeConfig(t, func(rc *workloads.RunConfig) {
				rc.ProducerRate, rc.Duration = 1000, workloads.Duration(time.Second)
				tc.edit(rc)
			})
			res, path, _ := runWithHistory(t, rc, bootstrap)
			bodies := map[string]int{}
			n := readRecords(t, bootstrap, readHistory(t, path, 2).header.Topics, res.Acked, func(r *kgo.Record) {
				bodies[string(r.Value[HeaderSize:])]++
			})
			if n < res.Acked || res.Acked < 900 {
				t.Fatalf("read %d records of %d acknowledged (want at least 900)", n, res.Acked)
			}
			if tc.name != "pool" && len(bodies) != 1 {
				t.Fatalf("%d distinct payloads, want every record to carry the same one", len(bodies))
			}
			var first []byte
			for body := range bodies {
				first = []byte(body)
				break
			}
			want := make([]byte, len(first))
			switch tc.name {
			case "pool":
				// 4 bodies, each picked by about a quarter of the records; the first
				// quarter of each random, the rest zeros.
				if len(bodies) != 4 {
					t.Fatalf("%d distinct payloads, want 4", len(bodies))
				}
				random := (len(first) + 2) / 4
				for body, k := range bodies {
					if k < int(n)/8 {
						t.Errorf("a payload carried by %d of %d records", k, n)
					}
					if bytes.Equal([]byte(body[:random]), want[:random]) || !bytes.Equal([]byte(body[random:]), want[random:]) {
						t.Errorf("payload %x is not %d random bytes then zeros", body, random)
					}
				}
				return
			case "file":
				for i := 0; i < len(want); i += copy(want[i:], "kchaos-payload-") {
				}
			case "random":
				if bytes.Equal(first, want) {
					t.Fatal("randomized payload is all zeros")
				}
				return
			}
			if !bytes.Equal(first, want) {
				t.Fatalf("payload %q, want %q", first[:32], want[:32])
			}
		})
	}
}

// readRecords reads topics from the start with a plain franz-go consumer, calling each for
// every record, until want records were read or 20s passed; it returns the records read.
func readRecords(t *testing.T, bootstrap, topics []string, want int64, each func(*kgo.Record)) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var n int64
	for n < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			each(r)
		})
	}
	return n
}
