//go:build cgo

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// NewTransformer returns a librdkafka transformer: a consumer group member of the input
// topic and a producer for the outputs, transactional when s.Transactional. A transaction
// commits the input offsets with SendOffsetsToTransaction and the consumer's group metadata
// (generation and member, KIP-447), so a member that lost its partitions is fenced.
func (d *confluentDriver) NewTransformer(s TransformSettings) (Transformer, error) {
	s.Consumer.AutoCommit, s.Consumer.Partitions = false, nil
	if s.Transactional {
		s.Producer.Transactional, s.Producer.Idempotence = true, true
	}
	prod, err := newConfluentProducer(s.Producer)
	if err != nil {
		return nil, err
	}
	cons, err := newConfluentConsumer(s.Consumer)
	if err != nil {
		prod.Close()
		return nil, err
	}
	return &confluentTransformer{set: s, cons: cons, prod: prod}, nil
}

// confluentTransformer pairs a group consumer with a producer. After a transaction that did
// not commit the caller replaces it, to read the inputs again from the committed offsets.
type confluentTransformer struct {
	set  TransformSettings
	cons *confluentConsumer
	prod *confluentProducer
	// began is the consumer's generation when the open transaction began; End aborts when
	// the group rebalanced since.
	began int
}

var _ Transformer = (*confluentTransformer)(nil)

func (t *confluentTransformer) Poll(ctx context.Context, wait time.Duration) (Polled, error) {
	return t.cons.Poll(ctx, wait)
}

func (t *confluentTransformer) Commit(ctx context.Context, offsets map[int32]int64) error {
	return t.cons.Commit(ctx, offsets)
}

func (t *confluentTransformer) Begin() error {
	if !t.set.Transactional {
		return errors.New("loadgen: begin transaction: transformer is not transactional")
	}
	t.began = t.cons.generation
	return t.prod.BeginTxn()
}

func (t *confluentTransformer) Send(ctx context.Context, m *Message, done Outcome) {
	t.prod.Send(ctx, m, done)
}

func (t *confluentTransformer) Flush(ctx context.Context) error { return t.prod.Flush(ctx) }

func (t *confluentTransformer) End(ctx context.Context, offsets map[int32]int64, commit bool) (bool, error) {
	if !t.set.Transactional {
		return false, errors.New("loadgen: end transaction: transformer is not transactional")
	}
	if err := t.prod.Flush(ctx); err != nil {
		return false, fmt.Errorf("loadgen: flush transaction: %w", err)
	}
	if !commit || t.cons.generation != t.began {
		// Aborted on request, or the group rebalanced during the transaction: the partitions
		// may be someone else's by now.
		return false, t.prod.abort(ctx)
	}
	md, err := t.cons.c.GetConsumerGroupMetadata()
	if err == nil && len(offsets) > 0 {
		err = t.prod.p.SendOffsetsToTransaction(ctx, t.cons.offsetList(offsets), md)
	}
	var ke kafka.Error
	if err != nil && errors.As(err, &ke) && ke.TxnRequiresAbort() {
		if aerr := t.prod.abort(ctx); aerr == nil {
			return false, nil
		}
	}
	if err == nil {
		err = t.prod.commit(ctx)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errTxnAborted):
		return false, nil
	}
	return false, fmt.Errorf("loadgen: end transaction: %w", err)
}

// Close closes both clients without ending an open transaction: the coordinator aborts it
// when the transformer's successor (same transactional.id) fences it.
func (t *confluentTransformer) Close() {
	_ = t.cons.c.Close()
	t.prod.p.Close()
	<-t.prod.done
}
