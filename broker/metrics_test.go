package broker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker"
)

func TestMetricsEndpoint(t *testing.T) {
	b, err := broker.New(broker.Config{NodeID: 1, Listen: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", DataDir: t.TempDir()},
		broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("m"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("0123456789")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get("http://" + b.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`kafka_server_brokertopicmetrics_messagesin_total{topic="m"} 10`,
		`kafka_log_log_logendoffset{partition="0",topic="m"} 10`,
		`kafka_cluster_partition_highwatermark{partition="0",topic="m"} 10`,
		`kafka_server_replicamanager_partitioncount 1`,
		`kafka_network_requestmetrics_requests_total{request="Produce"} 10`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}
