package broker_test

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker/brokertest"
)

// The Python clients: kafka-python (Debian python3-kafka) and librdkafka through
// confluent-kafka (Debian python3-confluent-kafka), run by the system interpreter (the python3
// of a pyenv on PATH does not have them). A missing module fails the test.

const systemPython = "/usr/bin/python3"

var pythonClients = []string{"kafka-python", "confluent-kafka"}

// runPython runs testdata/python_client.py with the system Python as client and returns its
// stdout.
func runPython(t *testing.T, client string, args ...string) string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, systemPython, append([]string{"testdata/python_client.py", client}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", client, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestPythonClientsOffsetsForTimes: kafka-python's and librdkafka's offsets_for_times find
// the first record at or after a timestamp inside a batch, as against Kafka.
func TestPythonClientsOffsetsForTimes(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "pyts", 1, nil)
	base := time.Now().UnixMilli() // recent: retention (7 days, checked every second) keeps it
	deltas := stepDeltas(20, 10)
	produceOK(t, dialRaw(t, p.Addr()), "pyts", 0, timedBatch(base, deltas...)) // offsets 0-19
	cases := []struct{ ts, offset int64 }{{base + 105, 11}, {base, 0}, {base + 190, 19}, {base + 191, -1}}
	var args []string
	for _, c := range cases {
		args = append(args, strconv.FormatInt(c.ts, 10))
	}
	for _, client := range pythonClients {
		t.Run(client, func(t *testing.T) {
			out := runPython(t, client, append([]string{"offsets-for-times", p.Addr(), "pyts", "0"}, args...)...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(cases) {
				t.Fatalf("output %q, want %d lines", out, len(cases))
			}
			for i, c := range cases {
				f := strings.Fields(lines[i])
				if len(f) < 2 || f[0] != strconv.FormatInt(c.ts, 10) || f[1] != strconv.FormatInt(c.offset, 10) {
					t.Errorf("offsets_for_times(%d) = %q, want offset %d", c.ts, lines[i], c.offset)
				}
				if len(f) == 3 && c.offset >= 0 && f[2] != strconv.FormatInt(base+deltas[c.offset], 10) {
					t.Errorf("offsets_for_times(%d): record timestamp %s, want %d", c.ts, f[2], base+deltas[c.offset])
				}
			}
		})
	}
}

// TestPythonClientsConsume: both Python clients read back every acknowledged record of four
// partitions, through the same fetch path franz-go's sessions use; neither client opens fetch
// sessions (they send SessionEpoch -1), so the broker serves them sessionless fetches.
func TestPythonClientsConsume(t *testing.T) {
	p := brokertest.Start(t, brokertest.Metrics("127.0.0.1:0"))
	const parts, n = 4, 400
	// gzip: kafka-python needs extra Debian packages for the other codecs.
	cl := newClient(t, p.Addr(), kgo.DefaultProduceTopic("pyc"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.GzipCompression()), kgo.ProducerLinger(time.Millisecond))
	createTopic(t, cl, "pyc", parts, nil)
	var mu sync.Mutex
	var acked []rec
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		cl.Produce(ctx(t, 30*time.Second), &kgo.Record{Partition: int32(i % parts), Value: []byte(value("pyc", i, 40))}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			acked = append(acked, rec{r.Partition, r.Offset, string(r.Value)})
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, client := range pythonClients {
		t.Run(client, func(t *testing.T) {
			before := scrapeMetric(t, p.MetricsAddr(), `kchaos_fetch_session_requests_total{mode="sessionless"}`)
			out := runPython(t, client, "consume", p.Addr(), "pyc", strconv.Itoa(parts), strconv.Itoa(n))
			checkRoundTrip(t, acked, parseRecordLines(t, client, out))
			after := scrapeMetric(t, p.MetricsAddr(), `kchaos_fetch_session_requests_total{mode="sessionless"}`)
			if after <= before {
				t.Fatalf("no sessionless fetch served to %s (%v before, %v after)", client, before, after)
			}
			t.Logf("%s: %v sessionless fetches", client, after-before)
		})
	}
}
