package loadgen

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/kchaos/kchaos/workloads"
)

// TestSaramaIdempotentConfig: an idempotent or transactional workload producer really is
// one in Sarama (Idempotent, one open request, acks=all, retries, a version with
// idempotence), and Sarama's own validation accepts the configuration.
func TestSaramaIdempotentConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		txn  bool
	}{
		{"idempotent", "driver: sarama\nproducer:\n  idempotence: true\n", false},
		{"transactional", "driver: sarama\nproducer:\n  transactional: true\n", true},
		{"transform", "driver: sarama\nconsumer:\n  mode: transform\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := workloads.Parse("w.yaml", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			p := ProducerSettings{ClientID: "c", TransactionalID: "tx", ProducerConfig: plan.Configs[0].Producer}
			cfg, err := saramaProducerConfig(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("sarama rejects the config: %v", err)
			}
			if !cfg.Producer.Idempotent || cfg.Net.MaxOpenRequests != 1 || cfg.Producer.RequiredAcks != sarama.WaitForAll ||
				cfg.Producer.Retry.Max < 1 || !cfg.Version.IsAtLeast(sarama.V0_11_0_0) {
				t.Errorf("idempotent %v open %d acks %d retries %d version %s", cfg.Producer.Idempotent, cfg.Net.MaxOpenRequests,
					cfg.Producer.RequiredAcks, cfg.Producer.Retry.Max, cfg.Version)
			}
			if got := cfg.Producer.Transaction.ID; (got != "") != tc.txn {
				t.Errorf("transactional id %q, transactional %v", got, tc.txn)
			}
		})
	}
	plain, err := workloads.Parse("w.yaml", []byte("driver: sarama\nproducer:\n  acks: 1\n  maxInFlight: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := saramaProducerConfig(ProducerSettings{ProducerConfig: plain.Configs[0].Producer})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Producer.Idempotent || cfg.Net.MaxOpenRequests != 3 || cfg.Producer.RequiredAcks != sarama.WaitForLocal {
		t.Errorf("plain producer: idempotent %v open %d acks %d", cfg.Producer.Idempotent, cfg.Net.MaxOpenRequests, cfg.Producer.RequiredAcks)
	}
}
