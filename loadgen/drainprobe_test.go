package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTailVisible: the drain's probe tells a partition tail that holds only transaction
// markers and aborted records (done: no client returns them) from one that still holds a
// record the drain's consumer should be handed, at each isolation level.
func TestTailVisible(t *testing.T) {
	bootstrap := kchaosBootstrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "probe"
	txn, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.DefaultProduceTopic(topic), kgo.TransactionalID("probe-txn"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	transaction := func(commit bool, values ...string) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	// Offsets 0-2 committed, 3 their marker; 4-6 aborted, 7 their marker; 8 a plain record.
	transaction(true, "c0", "c1", "c2")
	transaction(false, "a0", "a1", "a2")
	plain, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("p")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to      int64
		readCommitted bool
		want          bool
	}{
		{3, 8, true, false},  // marker, aborted records, marker
		{4, 8, true, false},  // aborted records and their marker
		{2, 8, true, true},   // a committed record
		{7, 9, true, true},   // a plain record
		{4, 8, false, true},  // read_uncommitted is handed aborted records
		{7, 8, false, false}, // a marker alone
		{3, 4, false, false},
		{8, 8, false, false}, // nothing left
	} {
		got, err := tailVisible(ctx, bootstrap, nil, topic, 0, c.from, c.to, c.readCommitted)
		if err != nil || got != c.want {
			t.Errorf("offsets [%d, %d) read_committed=%v: visible %v (%v), want %v", c.from, c.to, c.readCommitted, got, err, c.want)
		}
	}
}
