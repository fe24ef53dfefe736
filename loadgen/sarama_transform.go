package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

var _ TransformDriver = (*saramaDriver)(nil)

// NewTransformer returns a Sarama transformer: a consumer group member of the input topic
// and an AsyncProducer for the outputs, transactional when s.Transactional. A transaction
// commits the input offsets with AddOffsetsToTxnWithGroupMetadata, naming the group
// generation and member (KIP-447), so a member that lost its partitions is fenced.
func (d *saramaDriver) NewTransformer(s TransformSettings) (Transformer, error) {
	s.Consumer.AutoCommit, s.Consumer.Partitions = false, nil
	if s.Transactional {
		s.Producer.Transactional, s.Producer.Idempotence = true, true
	}
	pr, err := d.NewProducer(s.Producer)
	if err != nil {
		return nil, err
	}
	t := &saramaTransformer{d: d, set: s, prod: pr.(*saramaProducer)}
	if err := t.newConsumer(); err != nil {
		t.prod.Close()
		return nil, err
	}
	return t, nil
}

// saramaTransformer pairs a group consumer with a producer. A Sarama claim cannot be
// rewound: after an aborted transaction the caller replaces the transformer to read the
// inputs again from the committed offsets.
type saramaTransformer struct {
	d    *saramaDriver
	set  TransformSettings
	cons *saramaConsumer
	prod *saramaProducer
	// began is the group session the open transaction began in; End aborts when the group
	// moved to another generation since.
	began sarama.ConsumerGroupSession
}

var _ Transformer = (*saramaTransformer)(nil)

func (t *saramaTransformer) newConsumer() error {
	c, err := t.d.NewConsumer(t.set.Consumer)
	if err != nil {
		return err
	}
	t.cons = c.(*saramaConsumer)
	return nil
}

func (t *saramaTransformer) Poll(ctx context.Context, wait time.Duration) (Polled, error) {
	return t.cons.Poll(ctx, wait)
}

func (t *saramaTransformer) Commit(ctx context.Context, offsets map[int32]int64) error {
	return t.cons.Commit(ctx, offsets)
}

func (t *saramaTransformer) Begin() error {
	t.cons.mu.Lock()
	t.began = t.cons.sess
	t.cons.mu.Unlock()
	return t.prod.BeginTxn()
}

func (t *saramaTransformer) Send(ctx context.Context, m *Message, done Outcome) {
	t.prod.Send(ctx, m, done)
}

func (t *saramaTransformer) Flush(ctx context.Context) error { return t.prod.Flush(ctx) }

func (t *saramaTransformer) End(ctx context.Context, offsets map[int32]int64, commit bool) (bool, error) {
	if err := t.prod.Flush(ctx); err != nil {
		return false, fmt.Errorf("loadgen: flush transaction: %w", err)
	}
	t.cons.mu.Lock()
	sess := t.cons.sess
	t.cons.mu.Unlock()
	if commit && (sess == nil || sess != t.began) {
		// The group rebalanced during the transaction: the partitions may be someone
		// else's by now.
		commit = false
	}
	if commit {
		md := &sarama.ConsumerGroupMetadata{GroupID: t.set.Consumer.Group, GenerationID: sess.GenerationID(), MemberID: sess.MemberID()}
		if id := t.set.Consumer.InstanceID; id != "" {
			md.GroupInstanceID = &id
		}
		var pos []*sarama.PartitionOffsetMetadata
		for p, o := range offsets {
			pos = append(pos, &sarama.PartitionOffsetMetadata{Partition: p, Offset: o, LeaderEpoch: -1})
		}
		err := t.prod.ap.AddOffsetsToTxnWithGroupMetadata(map[string][]*sarama.PartitionOffsetMetadata{t.set.Consumer.Topic: pos}, md)
		if err == nil {
			err = t.prod.EndTxn(ctx, true)
		} else if t.prod.ap.TxnStatus()&sarama.ProducerTxnFlagAbortableError != 0 {
			if aerr := t.prod.ap.AbortTxn(); aerr == nil {
				err = fmt.Errorf("%w: %w", errTxnAborted, err)
			}
		}
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, errTxnAborted):
			return false, nil
		}
		return false, fmt.Errorf("loadgen: end transaction: %w", err)
	}
	return false, t.prod.EndTxn(ctx, false)
}

func (t *saramaTransformer) Close() {
	t.cons.Close()
	t.prod.Close()
}
