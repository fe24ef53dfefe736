package loadgen

import (
	"context"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/workloads"
)

// nopProducer acknowledges every record at once, to measure the harness's own cost.
type nopProducer struct{ off int64 }

func (p *nopProducer) Send(_ context.Context, m *Message, done func(int32, int64, error)) {
	p.off++
	done(0, p.off, nil)
}
func (p *nopProducer) Flush(context.Context) error { return nil }
func (p *nopProducer) Close()                      {}

// BenchmarkProducerPath measures the harness's cost per record (header, key, history,
// histograms, counters) with a client that acknowledges instantly.
func BenchmarkProducerPath(b *testing.B) {
	plan, err := workloads.Parse("b.yaml", []byte("messageSize: 1KiB\n"))
	if err != nil {
		b.Fatal(err)
	}
	for _, withHistory := range []bool{false, true} {
		name := "history=off"
		if withHistory {
			name = "history=on"
		}
		b.Run(name, func(b *testing.B) {
			r := &runner{cfg: plan.Configs[0], producing: make(chan struct{})}
			if withHistory {
				r.hw = history.NewWriter(io.Discard)
				defer r.hw.Close()
				r.startHistory()
			}
			p := &producerTask{r: r, topic: "t", client: &nopProducer{}, rec: newRecorder(),
				keys: newKeyChooser(&r.cfg, rand.New(rand.NewPCG(1, 2)))}
			p.payload = makePayload(1024, nil, false, nil)
			b.SetBytes(1024)
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			p.rate, p.limit = 1e12, uint64(b.N)
			p.run(context.Background(), start, start.Add(time.Hour))
			if withHistory {
				_ = r.stopHistory()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the process's user plus system CPU time: what the harness costs, unlike
// wall time on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
