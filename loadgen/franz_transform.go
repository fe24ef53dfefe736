package loadgen

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

var _ TransformDriver = (*franzDriver)(nil)

// NewTransformer returns a franz-go transformer: one client that is a group member of the
// input topic and produces the outputs. Transactional transformers use kgo's
// GroupTransactSession, which aborts a transaction when the group rebalanced during it and
// commits the offsets of everything polled since the last End (so End ignores offsets).
func (d *franzDriver) NewTransformer(s TransformSettings) (Transformer, error) {
	s.Consumer.AutoCommit, s.Consumer.Partitions = false, nil
	if s.Transactional {
		s.Producer.Transactional, s.Producer.Idempotence = true, true
	}
	fc, opts := franzConsumerOpts(s.Consumer)
	opts = append(opts, franzProducerOpts(s.Producer)...)
	// The consumer's seed brokers and client id win over the producer's (they are equal).
	opts = append(opts, kgo.SeedBrokers(s.Consumer.Bootstrap...), kgo.ClientID(s.Consumer.ClientID))
	t := &franzTransformer{franzConsumer: fc}
	if !s.Transactional {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("loadgen: franz-go transformer: %w", err)
		}
		fc.cl = cl
		return t, nil
	}
	opts = append(opts, kgo.RequireStableFetchOffsets())
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("loadgen: franz-go transactional transformer: %w", err)
	}
	fc.cl, t.sess = sess.Client(), sess
	return t, nil
}

// franzTransformer is a franz-go group consumer that also produces; sess is set when it is
// transactional.
type franzTransformer struct {
	*franzConsumer
	sess *kgo.GroupTransactSession
}

var _ Transformer = (*franzTransformer)(nil)

func (t *franzTransformer) Begin() error {
	if t.sess == nil {
		return fmt.Errorf("loadgen: begin transaction: transformer is not transactional")
	}
	if err := t.sess.Begin(); err != nil {
		return fmt.Errorf("loadgen: begin transaction: %w", err)
	}
	return nil
}

func (t *franzTransformer) Send(ctx context.Context, m *Message, done Outcome) {
	(&franzProducer{cl: t.cl}).Send(ctx, m, done)
}

func (t *franzTransformer) Flush(ctx context.Context) error { return t.cl.Flush(ctx) }

func (t *franzTransformer) End(ctx context.Context, _ map[int32]int64, commit bool) (bool, error) {
	if t.sess == nil {
		return false, fmt.Errorf("loadgen: end transaction: transformer is not transactional")
	}
	committed, err := t.sess.End(ctx, kgo.TransactionEndTry(commit))
	if err != nil {
		return false, fmt.Errorf("loadgen: end transaction: %w", err)
	}
	return committed, nil
}
