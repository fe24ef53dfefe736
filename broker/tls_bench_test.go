package broker_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduceTLS measures what TLS costs a franz-go producer of 1 KiB random
// (incompressible, uncompressed) records with acks=1 against one in-process broker: its plaintext and SSL listeners in the same run
// (client and broker share the machine, so the numbers are their combined cost).
func BenchmarkProduceTLS(b *testing.B) {
	sb := startSecureBroker(b, nil)
	value := make([]byte, 1024)
	rand.Read(value) // incompressible, as a real payload would be
	clients := map[string]*kgo.Client{}
	for _, listener := range []string{"PLAINTEXT", "SSL"} {
		topic := "bench-" + listener
		opts := []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic(topic),
			kgo.ProducerBatchCompression(kgo.NoCompression())}
		if listener == "PLAINTEXT" {
			clients[listener] = newClient(b, sb.b.Addr(), opts...)
		} else {
			clients[listener] = franzClient(b, sb.props("SSL", "", "", ""), opts...)
		}
		createTopic(b, clients[listener], topic, 4, nil)
		if err := clients[listener].ProduceSync(ctx(b, 30e9), &kgo.Record{Value: value}).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	for _, listener := range []string{"PLAINTEXT", "SSL"} {
		cl := clients[listener]
		b.Run("listener="+listener+",size=1KiB,acks=1", func(b *testing.B) {
			b.SetBytes(int64(len(value)))
			for range b.N {
				cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			if err := cl.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
