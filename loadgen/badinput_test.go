package loadgen

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/history"
)

// TestBadInputFailsTheSend sends, with every driver, a record to a topic the cluster does not
// have (auto-creation off) and a record larger than any limit allows (2MiB: over the
// clients' default message.max.bytes and the broker's): each must come back as a failed send
// carrying the client's error, within the delivery timeout, not hang. With retries 0 the
// history calls both sends failed (not indeterminate).
func TestBadInputFailsTheSend(t *testing.T) {
	t.Parallel()
	bootstrap := []string{brokertest.Start(t, brokertest.Set("auto.create.topics.enable", "false")).Addr()}
	for _, driver := range allDrivers {
		t.Run("driver="+driver, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			drv, err := NewDriver(driver, bootstrap, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer drv.Close()
			topic := "bad-input-" + driver
			if err := drv.CreateTopics(ctx, []string{topic}, 1, 1, nil); err != nil {
				t.Fatal(err)
			}
			cfg := smokeConfig(t, nil).Producer
			zero := 0
			cfg.Retries = &zero
			p, err := drv.NewProducer(ProducerSettings{Bootstrap: bootstrap, ClientID: "kchaos-bad-input", ProducerConfig: cfg})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for _, tc := range []struct {
				name, topic string
				size        int
				want        []string
			}{
				{"unknown-topic", "no-such-topic", 128, []string{"UNKNOWN_TOPIC_OR_PARTITION"}},
				{"oversized", topic, 2 << 20, []string{"MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"}},
			} {
				got := make(chan error, 1)
				start := time.Now()
				p.Send(ctx, &Message{Topic: tc.topic, Value: make([]byte, tc.size)}, OutcomeFunc(func(_ int32, _ int64, err error) { got <- err }))
				select {
				case err := <-got:
					name := ErrorName(err)
					t.Logf("%s: %s after %v: %v", tc.name, name, time.Since(start).Round(time.Millisecond), err)
					if err == nil || !slices.Contains(tc.want, name) {
						t.Errorf("%s: outcome %q (%v), want one of %v", tc.name, name, err, tc.want)
					}
					if SendOutcome(err, 0) != history.Fail {
						t.Errorf("%s: the history would call %q indeterminate, want failed", tc.name, name)
					}
				case <-time.After(time.Duration(cfg.DeliveryTimeout) + 10*time.Second):
					t.Fatalf("%s: no outcome after %v: the send hangs", tc.name, time.Since(start))
				}
			}
		})
	}
}
