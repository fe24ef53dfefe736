//go:build cgo

package loadgen

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// bareConfluentRate is bareFranzRate with a plain librdkafka producer, configured as the
// confluent driver configures it, reading delivery reports from its events channel and
// waiting a millisecond while its queue is full, as the driver does.
func bareConfluentRate(b *testing.B, bootstrap []string, topic string, rate float64) (float64, [2]float64) {
	cm, err := confluentProducerConfig(benchProducerSettings(b, "confluent", bootstrap))
	if err != nil {
		b.Fatal(err)
	}
	p, err := kafka.NewProducer(&cm)
	if err != nil {
		b.Fatal(err)
	}
	var acked atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error == nil {
				acked.Add(1)
			}
		}
	}()
	r, c := bareLoop(b, "confluent", rate, &acked, func() {
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: make([]byte, 1024)}
		for {
			err := p.Produce(m, nil)
			var ke kafka.Error
			if err == nil || !errors.As(err, &ke) || ke.Code() != kafka.ErrQueueFull {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	p.Flush(30000)
	p.Close()
	<-done
	return r, c
}
