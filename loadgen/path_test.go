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

func (p *nopProducer) Send(_ context.Context, m *Message, done Outcome) {
	p.off++
	done.Done(0, p.off, nil)
}
func (p *nopProducer) Flush(context.Context) error { return nil }
func (p *nopProducer) Close()                      {}

// asyncProducer acknowledges records from another goroutine in batches of 64, as a real
// client completes a produce request's records together.
type asyncProducer struct {
	off     int64
	pending []Outcome
	batches chan []Outcome
	done    chan struct{}
}

func newAsyncProducer() *asyncProducer {
	p := &asyncProducer{batches: make(chan []Outcome, 64), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var off int64
		for batch := range p.batches {
			for _, f := range batch {
				off++
				f.Done(0, off, nil)
			}
		}
	}()
	return p
}

func (p *asyncProducer) Send(_ context.Context, m *Message, done Outcome) {
	p.pending = append(p.pending, done)
	if len(p.pending) == 64 {
		p.batches <- p.pending
		p.pending = make([]Outcome, 0, 64)
	}
}

func (p *asyncProducer) Flush(context.Context) error {
	if len(p.pending) > 0 {
		p.batches <- p.pending
		p.pending = nil
	}
	close(p.batches)
	<-p.done
	return nil
}
func (p *asyncProducer) Close() {}

// BenchmarkProducerPath measures the harness's cost per record (header, key, history,
// histograms, counters) with a client that acknowledges instantly.
func BenchmarkProducerPath(b *testing.B) {
	plan, err := workloads.Parse("b.yaml", []byte("messageSize: 1KiB\n"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		withHistory bool
		async       bool
	}{{"history=off", false, false}, {"history=on", true, false}, {"history=off,acks=async", false, true}, {"history=on,acks=async", true, true}} {
		withHistory := c.withHistory
		b.Run(c.name, func(b *testing.B) {
			r := &runner{cfg: plan.Configs[0], producing: make(chan struct{})}
			if withHistory {
				r.hw = history.NewWriter(io.Discard)
				defer r.hw.Close()
			}
			var client Producer = &nopProducer{}
			if c.async {
				client = newAsyncProducer()
			}
			p := &producerTask{r: r, topic: "t", client: client, rec: newRecorder(), outRec: newRecorder(),
				keys: newKeyChooser(&r.cfg, rand.New(rand.NewPCG(1, 2)))}
			if r.hw != nil {
				p.invokes, p.outcomes = r.hw.NewLane(), r.hw.NewLane()
			}
			p.payloads = makePayloads(1024, nil, false, 0, 0, nil)
			b.SetBytes(1024)
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			p.rate, p.limit = 1e12, uint64(b.N+63)/64*64 // whole batches for asyncProducer
			p.run(context.Background(), start, start.Add(time.Hour))
			_ = client.Flush(context.Background())
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
