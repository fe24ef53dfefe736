package workloads

import (
	"strings"
	"testing"
	"time"
)

func TestClientPropertiesSetFields(t *testing.T) {
	src := `name: c
producer:
  acks: all
consumer:
  mode: group
client:
  security.protocol: SASL_SSL
  linger.ms: 7
  fetch.min.bytes: 1024
  acks: all
`
	opts := Options{
		Client: []ClientProperty{
			{Key: "batch.size", Value: "1048576", Where: "kafka.yaml:15", Scope: ScopeProducer},
			{Key: "enable.auto.commit", Value: "false", Where: "kafka.yaml:18", Scope: ScopeConsumer},
			{Key: "max.poll.records", Value: "50", Where: "kafka.yaml:19", Scope: ScopeConsumer},
			{Key: "request.timeout.ms", Value: "200000", Where: "kafka.yaml:11"},
			{Key: "linger.ms", Value: "9", Where: "client.properties:2"},
			{Key: "sasl.mechanism", Value: "PLAIN", Where: "client.properties:3"},
		},
		ReplicationFactor: 3, ReplicationFactorWhere: "kafka.yaml:5",
		TopicConfig: []ClientProperty{{Key: "min.insync.replicas", Value: "2", Where: "kafka.yaml:8"}},
	}
	plan, err := ParseWith("c.yaml", []byte(src), opts)
	if err != nil {
		t.Fatal(err)
	}
	rc := plan.Configs[0]
	if time.Duration(*rc.Producer.Linger) != 9*time.Millisecond || rc.Producer.BatchSize != 1<<20 || rc.Consumer.FetchMinBytes != 1024 ||
		rc.Consumer.Commit != CommitAfterProcessing || rc.Consumer.MaxPollRecords != 50 || time.Duration(rc.Producer.RequestTimeout) != 200*time.Second {
		t.Fatalf("producer %+v consumer %+v", rc.Producer, rc.Consumer)
	}
	if time.Duration(rc.Producer.DeliveryTimeout) < 200*time.Second {
		t.Fatalf("delivery timeout %s did not grow to linger + request timeout", rc.Producer.DeliveryTimeout)
	}
	if rc.ReplicationFactor != 3 || rc.MinInsyncReplicas() != 2 {
		t.Fatalf("replication factor %d, min.insync.replicas %d", rc.ReplicationFactor, rc.MinInsyncReplicas())
	}
	var keys []string
	for _, p := range rc.Client {
		keys = append(keys, p.Key+"@"+p.Where)
	}
	if strings.Join(keys, " ") != "security.protocol@c.yaml:7:3 sasl.mechanism@client.properties:3" {
		t.Fatalf("connection properties %v", keys)
	}
}

func TestClientPropertiesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		opts      Options
		want      string
	}{
		{"contradicts an explicit field", "producer:\n  acks: all\n", Options{Client: []ClientProperty{{Key: "acks", Value: "1", Where: "client.properties:4"}}},
			`workloads: client.properties:4: acks: "1" contradicts producer.acks: all at w.yaml:2:3`},
		{"contradicts the matrix", "matrix:\n  linger: [1ms, 5ms]\n", Options{Client: []ClientProperty{{Key: "linger.ms", Value: "2", Where: "p:1"}}},
			`p:1: linger.ms: "2" contradicts producer.linger`},
		{"wrong scope", "name: w\n", Options{Client: []ClientProperty{{Key: "acks", Value: "1", Where: "kafka.yaml:20", Scope: ScopeConsumer}}},
			"kafka.yaml:20: acks: a producer property; it cannot be in the consumer configuration"},
		{"bad value", "name: w\n", Options{Client: []ClientProperty{{Key: "linger.ms", Value: "soon", Where: "p:2"}}},
			`p:2: linger.ms: "soon" is not allowed; want milliseconds`},
		{"validated like the field", "name: w\n", Options{Client: []ClientProperty{{Key: "acks", Value: "2", Where: "p:3"}}},
			`workloads: p:3 (acks): producer.acks: "2" is not allowed`},
		{"offset reset", "name: w\n", Options{Client: []ClientProperty{{Key: "auto.offset.reset", Value: "latest", Where: "p:4"}}},
			"p:4: auto.offset.reset: \"latest\" is not honoured"},
		{"auto commit contradicts", "consumer:\n  commit: auto\n", Options{Client: []ClientProperty{{Key: "enable.auto.commit", Value: "false", Where: "p:5"}}},
			"p:5: enable.auto.commit: false contradicts consumer.commit: auto"},
		{"replication factor", "replicationFactor: 1\n", Options{ReplicationFactor: 3, ReplicationFactorWhere: "kafka.yaml:5"},
			"kafka.yaml:5: replicationFactor: 3 contradicts replicationFactor: 1 at w.yaml:1:1"},
		{"client map value", "client:\n  sasl.jaas.config: [a, b]\n", Options{}, "w.yaml:2:3: client.sasl.jaas.config: want a single value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWith("w.yaml", []byte(tc.src), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %q", err, tc.want)
			}
		})
	}
}
