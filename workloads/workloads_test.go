package workloads

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOMBFilesAcceptedUnchanged(t *testing.T) {
	paths, _ := filepath.Glob("testdata/omb-*.yaml")
	if len(paths) == 0 {
		t.Fatal("no OMB testdata")
	}
	for _, p := range paths {
		plan, err := Load(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(plan.Configs) != 1 || plan.Configs[0].Config != "default" {
			t.Fatalf("%s: want one default config, got %+v", p, plan.Configs)
		}
	}
	plan, _ := Load("testdata/omb-1-topic-16-partitions-1kb.yaml")
	rc := plan.Configs[0]
	if rc.Name != "1 topic / 16 partitions / 1Kb" || rc.PartitionsPerTopic != 16 || rc.MessageSize != 1024 ||
		rc.ProducerRate != 50000 || rc.KeyDistributor != "NO_KEY" || rc.PayloadFile != "payload/payload-1Kb.data" {
		t.Errorf("OMB fields not read: %+v", rc.Workload)
	}
	if time.Duration(rc.Duration) != 15*time.Minute {
		t.Errorf("testDurationMinutes 15 gave duration %v", rc.Duration)
	}
	if rc.Driver != "franz-go" || rc.Producer.Acks != "all" || rc.Consumer.Mode != ModeGroup || *rc.SubscriptionsPerTopic != 1 {
		t.Errorf("defaults: driver %q acks %q mode %q", rc.Driver, rc.Producer.Acks, rc.Consumer.Mode)
	}
	plan, _ = Load("testdata/omb-backlog-random-payload.yaml")
	rc = plan.Configs[0]
	if time.Duration(rc.Warmup) != time.Minute || rc.ConsumerBacklogSizeGB != 1 || !rc.UseRandomizedPayloads ||
		rc.RandomBytesRatio != 0.5 || rc.RandomizedPayloadPoolSize != 1000 {
		t.Errorf("backlog OMB file: %+v", rc.Workload)
	}
	plan, err := Parse("r.yaml", []byte("useRandomizedPayloads: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rc := plan.Configs[0]; rc.RandomBytesRatio != 1 || rc.RandomizedPayloadPoolSize != 1 {
		t.Errorf("randomized payload defaults: ratio %v pool %d, want 1 and 1", rc.RandomBytesRatio, rc.RandomizedPayloadPoolSize)
	}
}

func TestShippedWorkloadsLoad(t *testing.T) {
	names := Shipped()
	if len(names) < 10 {
		t.Fatalf("only %d shipped workloads: %v", len(names), names)
	}
	for _, n := range names {
		if _, err := Open(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	demo, err := Open("demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(demo.Configs) != 6 {
		t.Fatalf("demo: %d configs, want 6", len(demo.Configs))
	}
	var total time.Duration
	for _, c := range demo.Configs {
		if c.ReplicationFactor != 3 || c.Chaos == nil || c.Performance == nil {
			t.Errorf("demo %s: RF %d chaos %v performance %v", c.Config, c.ReplicationFactor, c.Chaos, c.Performance)
		}
		total += time.Duration(c.Duration + c.Warmup)
	}
	if total > 150*time.Second {
		t.Errorf("demo produces for %v in total; make run must stay under five minutes", total)
	}
	var ids []int
	for _, c := range demo.Claims {
		ids = append(ids, c.ID)
	}
	if fmt.Sprint(ids) != "[1 2 3 5 7 12]" {
		t.Errorf("demo answers claims %v, want 1, 2, 3, 5, 7 and 12", ids)
	}
	if ch := demo.Configs[0].Chaos; ch.Line == 0 || !strings.Contains(ch.String(), "drop-responses") {
		t.Errorf("chaos raw not kept: line %d %q", ch.Line, ch.String())
	}
}

func TestMatrixExpansion(t *testing.T) {
	src := `
name: m
duration: 10s
producer:
  acks: all
topicConfig:
  min.insync.replicas: 2
matrix:
  acks: [0, 1, all]
  batchSize: [16KiB, 256KiB]
  topicConfig.min.insync.replicas: [1]
  consumer.mode: [group]
`
	plan, err := Parse("m.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range plan.Configs {
		names = append(names, c.Config)
	}
	want := []string{
		"acks=0,batchSize=16KiB,topicConfig.min.insync.replicas=1,consumer.mode=group",
		"acks=0,batchSize=256KiB,topicConfig.min.insync.replicas=1,consumer.mode=group",
		"acks=1,batchSize=16KiB,topicConfig.min.insync.replicas=1,consumer.mode=group",
		"acks=1,batchSize=256KiB,topicConfig.min.insync.replicas=1,consumer.mode=group",
		"acks=all,batchSize=16KiB,topicConfig.min.insync.replicas=1,consumer.mode=group",
		"acks=all,batchSize=256KiB,topicConfig.min.insync.replicas=1,consumer.mode=group",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Fatalf("names:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	c := plan.Configs[3]
	if c.Producer.Acks != "1" || c.Producer.BatchSize != 256<<10 || c.MinInsyncReplicas() != 1 || c.Matrix != nil {
		t.Errorf("combination 3 not applied: %+v", c.Producer)
	}
	if plan.Workload.TopicConfig["min.insync.replicas"] != uint64(2) {
		t.Errorf("matrix changed the base workload: %v", plan.Workload.TopicConfig)
	}
	// Deterministic: the same file gives the same order.
	again, _ := Parse("m.yaml", []byte(src))
	for i := range again.Configs {
		if again.Configs[i].Config != plan.Configs[i].Config {
			t.Fatal("expansion order not deterministic")
		}
	}
}

func TestHumanUnits(t *testing.T) {
	plan, err := Parse("u.yaml", []byte("duration: 2m\nwarmup: 30s\nmessageSize: 16KiB\nproducer: {batchSize: 1MiB, linger: 0ms}\nconsumer: {processingTime: 250us}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := plan.Configs[0]
	if time.Duration(c.Duration) != 2*time.Minute || time.Duration(c.Warmup) != 30*time.Second || c.MessageSize != 16<<10 ||
		c.Producer.BatchSize != 1<<20 || *c.Producer.Linger != 0 || time.Duration(c.Consumer.ProcessingTime) != 250*time.Microsecond {
		t.Errorf("units: %+v", c.Workload)
	}
	for _, tc := range []struct {
		in   string
		want Size
	}{{"100", 100}, {"100B", 100}, {"1KB", 1000}, {"2MiB", 2 << 20}, {"1GiB", 1 << 30}} {
		if got, err := ParseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if Size(16<<10).String() != "16KiB" || Size(1000).String() != "1000B" {
		t.Errorf("Size.String: %s %s", Size(16<<10), Size(1000))
	}
}

func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"unknown top-level field", "name: x\nproducerRat: 5\n", []string{"e.yaml:2:1", "unknown field \"producerRat\""}},
		{"unknown nested field", "producer:\n  ack: all\n", []string{"e.yaml:2:3", "unknown field \"ack\""}},
		{"bad acks", "producer:\n  acks: 2\n", []string{"e.yaml:2:3", "producer.acks", `"2" is not allowed; allowed: 0, 1, all, -1`}},
		{"bad compression", "producer:\n  compression: brotli\n", []string{"e.yaml:2:3", "producer.compression", "allowed: none, gzip, snappy, lz4, zstd"}},
		{"bad driver", "driver: rdkafka\n", []string{"e.yaml:1:1", "driver", "allowed: franz-go, sarama, kafka-go, confluent"}},
		{"kafka-go idempotence", "driver: kafka-go\nproducer:\n  idempotence: true\n", []string{"e.yaml:3:3", "producer.idempotence", "not supported by driver kafka-go"}},
		{"kafka-go transactions", "driver: kafka-go\nproducer:\n  transactional: true\n", []string{"e.yaml:3:3", "producer.transactional", "not supported by driver kafka-go"}},
		{"kafka-go transform", "driver: kafka-go\nconsumer:\n  mode: transform\n", []string{"e.yaml:3:3", "consumer.mode", "driver kafka-go"}},
		{"kafka-go static members", "driver: kafka-go\nconsumer:\n  staticMembership: true\n", []string{"e.yaml:3:3", "consumer.staticMembership", "driver kafka-go"}},
		{"kafka-go in-flight", "driver: kafka-go\nproducer:\n  maxInFlight: 1\n", []string{"e.yaml:3:3", "producer.maxInFlight", "driver kafka-go"}},
		{"kafka-go delivery timeout", "driver: kafka-go\nproducer:\n  deliveryTimeout: 1m\n", []string{"e.yaml:3:3", "producer.deliveryTimeout", "driver kafka-go"}},
		{"kafka-go record over batch", "driver: kafka-go\nmessageSize: 16KiB\n", []string{"e.yaml:2:1", "messageSize", "batchSize must be at least"}},
		{"kafka-go batch under record", "driver: kafka-go\nmessageSize: 1KiB\nproducer:\n  batchSize: 1KiB\n", []string{"e.yaml:4:3", "producer.batchSize", "driver kafka-go"}},
		{"bad key distributor", "keyDistributor: RANDOM\n", []string{"e.yaml:1:1", "keyDistributor", "NO_KEY, KEY_ROUND_ROBIN, RANDOM_NANO"}},
		{"keys and keyDistributor", "keyDistributor: NO_KEY\nkeys: {distinct: 3}\n", []string{"e.yaml:2:1", "keys and keyDistributor are both set"}},
		{"bad key distribution", "keys:\n  distribution: pareto\n", []string{"e.yaml:2:3", "keys.distribution", "uniform, zipf, round-robin"}},
		{"zipf s", "keys:\n  distribution: zipf\n  s: 0.5\n", []string{"e.yaml:3:3", "keys.s", "greater than 1"}},
		{"zero distinct keys", "keys:\n  distinct: 0\n", []string{"e.yaml:2:3", "keys.distinct", "at least 1"}},
		{"bad consumer mode", "consumer:\n  mode: stream\n", []string{"e.yaml:2:3", "consumer.mode", "group, assign, batch, async"}},
		{"bad commit mode", "consumer:\n  commit: sometimes\n", []string{"e.yaml:2:3", "consumer.commit", "auto, manual-after-processing"}},
		{"async before processing", "consumer:\n  mode: async\n  commit: manual-before-processing\n", []string{"e.yaml:3:3", "not allowed with mode async"}},
		{"bad isolation", "consumer:\n  isolationLevel: serializable\n", []string{"e.yaml:2:3", "consumer.isolationLevel", "read_uncommitted, read_committed"}},
		{"zero workers", "consumer:\n  workers: 0\n", []string{"e.yaml:2:3", "consumer.workers", "at least 1"}},
		{"zero batch", "consumer:\n  batchSize: 0\n", []string{"e.yaml:2:3", "consumer.batchSize", "at least 1"}},
		{"bad duration", "duration: 30\n", []string{"e.yaml:1:11", "is not a duration", "30s"}},
		{"bad size", "messageSize: 1 kilobyte\n", []string{"e.yaml:1:14", "is not a size", "16KiB"}},
		{"message smaller than header", "messageSize: 8\n", []string{"e.yaml:1:1", "messageSize", "32B to 64MiB"}},
		{"huge batch", "producer:\n  batchSize: 1GiB\n", []string{"e.yaml:2:3", "producer.batchSize", "1B to 64MiB"}},
		{"missing payload file", "payloadFile: nothere.bin\n", []string{"e.yaml:1:1", "payloadFile", "cannot read nothere.bin: no such file or directory"}},
		{"payload file is a directory", "payloadFile: testdata\n", []string{"e.yaml:1:1", "payloadFile", "testdata is empty or not a file"}},
		{"random ratio above 1", "useRandomizedPayloads: true\nrandomBytesRatio: 1.5\n", []string{"e.yaml:2:1", "randomBytesRatio", "above 0, at most 1"}},
		{"random ratio 0", "randomBytesRatio: 0\n", []string{"e.yaml:1:1", "randomBytesRatio", "above 0, at most 1"}},
		{"zero payload pool", "randomizedPayloadPoolSize: 0\n", []string{"e.yaml:1:1", "randomizedPayloadPoolSize", "at least 1"}},
		{"huge payload pool", "messageSize: 1MiB\nrandomizedPayloadPoolSize: 100\n", []string{"e.yaml:2:1", "randomizedPayloadPoolSize", "more than 64MiB per producer"}},
		{"negative rate", "producerRate: -5\n", []string{"e.yaml:1:1", "producerRate", "at least 0"}},
		{"zero topics", "topics: 0\n", []string{"e.yaml:1:1", "topics", "at least 1"}},
		{"zero partitions", "partitionsPerTopic: 0\n", []string{"e.yaml:1:1", "partitionsPerTopic", "at least 1"}},
		{"zero producers", "producersPerTopic: 0\n", []string{"e.yaml:1:1", "producersPerTopic", "at least 1"}},
		{"zero consumers", "consumerPerSubscription: 0\n", []string{"e.yaml:1:1", "consumerPerSubscription", "at least 1"}},
		{"negative subscriptions", "subscriptionsPerTopic: -1\n", []string{"e.yaml:1:1", "subscriptionsPerTopic", "at least 0"}},
		{"negative backlog", "consumerBacklogSizeGB: -1\n", []string{"e.yaml:1:1", "consumerBacklogSizeGB", "at least 0"}},
		{"negative minutes", "testDurationMinutes: -1\n", []string{"e.yaml:1:1", "testDurationMinutes", "at least 0"}},
		{"negative warmup minutes", "warmupDurationMinutes: -1\n", []string{"e.yaml:1:1", "warmupDurationMinutes", "at least 0"}},
		{"zero replication", "replicationFactor: 0\n", []string{"e.yaml:1:1", "replicationFactor", "at least 1"}},
		{"zero in-flight", "producer:\n  maxInFlight: 0\n", []string{"e.yaml:2:3", "producer.maxInFlight", "at least 1"}},
		{"negative retries", "producer:\n  retries: -1\n", []string{"e.yaml:2:3", "producer.retries", "at least 0"}},
		{"idempotence acks", "producer:\n  acks: 1\n  idempotence: true\n", []string{"e.yaml:3:3", "idempotence requires acks=all"}},
		{"idempotence in-flight", "producer:\n  idempotence: true\n  maxInFlight: 6\n", []string{"e.yaml:2:3", "maxInFlight of at most 5"}},
		{"idempotence retries", "producer:\n  idempotence: true\n  retries: 0\n", []string{"e.yaml:2:3", "retries greater than 0"}},
		{"transactional commit outside transform", "consumer:\n  commit: transactional\n", []string{"e.yaml:2:3", "consumer.commit", "mode transform only"}},
		{"transform auto commit", "consumer:\n  mode: transform\n  commit: auto\n", []string{"e.yaml:3:3", "not allowed with mode transform", "transactional, manual-after-processing"}},
		{"transform two groups", "subscriptionsPerTopic: 2\nconsumer:\n  mode: transform\n", []string{"e.yaml:1:1", "exactly one subscription"}},
		{"transform acks", "producer:\n  acks: 1\nconsumer:\n  mode: transform\n", []string{"idempotence requires acks=all"}},
		{"transactional acks", "producer:\n  acks: 1\n  transactional: true\n", []string{"idempotence requires acks=all"}},
		{"zero transaction size", "producer:\n  transactionSize: 0\n", []string{"e.yaml:2:3", "producer.transactionSize", "at least 1"}},
		{"abort ratio", "producer:\n  abortRatio: 1.5\n", []string{"e.yaml:2:3", "producer.abortRatio", "0 to 1"}},
		{"bad min insync", "topicConfig:\n  min.insync.replicas: two\n", []string{"e.yaml:2:3", "topicConfig.min.insync.replicas", "integer of at least 1"}},
		{"bad unclean", "topicConfig:\n  unclean.leader.election.enable: maybe\n", []string{"e.yaml:2:3", "allowed: true, false"}},
		{"bad flush", "topicConfig:\n  flush.messages: 0\n", []string{"e.yaml:2:3", "topicConfig.flush.messages"}},
		{"bad topic config name", "topicConfig:\n  Min_Insync: 2\n", []string{"e.yaml:2:3", "not a Kafka topic config name"}},
		{"topic config not scalar", "topicConfig:\n  retention.ms: [1, 2]\n", []string{"e.yaml:2:3", "want a single value"}},
		{"type mismatch", "topics: many\n", []string{"e.yaml:1:9", "topics", `"many" is not allowed; want an integer`}},
		{"matrix not a mapping", "matrix: 5\n", []string{"e.yaml:1:9", "matrix: want a mapping", "or a list of mappings"}},
		{"matrix list of scalars", "matrix: [1, 2]\n", []string{"e.yaml:1:10", "want each entry a mapping"}},
		{"matrix list entry list value", "matrix:\n  - {acks: [0, 1]}\n", []string{"e.yaml:2:12", "matrix.acks", "single value"}},
		{"matrix list repeated entry", "matrix:\n  - {acks: 1}\n  - {acks: 1}\n", []string{"e.yaml:3:5", "acks=1 repeats the entry at line 2"}},
		{"matrix list unknown field", "matrix:\n  - {ackz: 1}\n", []string{"e.yaml:2:6", "matrix.ackz", "unknown field"}},
		{"matrix list bad value", "matrix:\n  - {acks: 2}\n", []string{"producer.acks", `"2" is not allowed`}},
		{"zero trials", "trials: 0\n", []string{"e.yaml:1:1", "trials", "at least 1"}},
		{"matrix unknown field", "matrix:\n  ackz: [0, 1]\n", []string{"e.yaml:2:3", "matrix.ackz", "unknown field"}},
		{"matrix value not a list", "matrix:\n  acks: all\n", []string{"e.yaml:2:9", "matrix.acks", "non-empty list"}},
		{"matrix empty list", "matrix:\n  acks: []\n", []string{"e.yaml:2:9", "non-empty list"}},
		{"matrix struct field", "matrix:\n  producer: [1]\n", []string{"e.yaml:2:3", "not a single value"}},
		{"matrix chaos", "matrix:\n  chaos: [1]\n", []string{"e.yaml:2:3", "cannot vary"}},
		{"matrix bad value", "matrix:\n  acks: [0, 2]\n", []string{"e.yaml:2:13", "producer.acks", `"2" is not allowed`}},
		{"matrix bad size", "matrix:\n  batchSize: [16KiB, big]\n", []string{"e.yaml:2:22", "is not a size"}},
		{"syntax error", "producer: [\n", []string{"e.yaml:"}},
		{"not a mapping", "- 1\n- 2\n", []string{"e.yaml:1", "want a mapping"}},
		{"duplicate key", "topics: 1\ntopics: 2\n", []string{"e.yaml:2:1", "already defined"}},
		{"not a list", "claims: {id: 2}\n", []string{"e.yaml:1:9", "claims: want a list"}},
		{"entry not a mapping", "claims: [2]\n", []string{"e.yaml:1:10", "want a mapping with id"}},
		{"no id", twoAcks + "claims:\n  - {unsafe: {acks: 1}, safe: {acks: all}}\n", []string{"e.yaml:4:5", "needs an id"}},
		{"bad id", "claims:\n  - {id: two}\n", []string{"e.yaml:2:10", "claims.id", `"two" is not allowed`}},
		{"unknown field", "claims:\n  - {id: 2, unsafe: {acks: 1}, safe: {acks: all}, sides: 2}\n", []string{"e.yaml:2:51", `unknown field "sides"`}},
		{"one side", twoAcks + "claims:\n  - {id: 2, unsafe: {acks: 1}}\n", []string{"e.yaml:4:5", "needs both an unsafe and a safe side"}},
		{"unknown matcher field", twoAcks + "claims:\n  - {id: 2, unsafe: {ackz: 1}, safe: {acks: all}}\n", []string{"e.yaml:4:22", "claims.unsafe.ackz", "unknown field"}},
		{"bad matcher value", twoAcks + "claims:\n  - {id: 2, unsafe: {acks: 2}, safe: {acks: all}}\n", []string{"e.yaml:4:21", "acks=2 matches no configuration"}},
		{"matches nothing", twoAcks + "claims:\n  - {id: 2, unsafe: {acks: 0}, safe: {acks: all}}\n", []string{"e.yaml:4:21", "claims.unsafe: acks=0 matches no configuration"}},
		{"both sides", twoAcks + "claims:\n  - {id: 2, unsafe: {acks: [1, all]}, safe: {acks: all}}\n", []string{"configuration acks=all is on both sides of claim 2"}},
		{"twice", twoAcks + "claims:\n  - {id: 7}\n  - {id: 7}\n", []string{"e.yaml:5", "claim 7 is declared twice (also at e.yaml:4)"}},
		{"claims in matrix", "matrix:\n  claims: [1]\n", []string{"e.yaml:2:3", "cannot vary"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("e.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.src)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("want not-exist error, got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestTransformDefaults: mode transform defaults to transactional commits, idempotent
// producers and read_committed; the shipped claim-13 exactly-once file runs both commit modes.
func TestTransformDefaults(t *testing.T) {
	plan, err := Parse("t.yaml", []byte("consumer:\n  mode: transform\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := plan.Configs[0]
	if c.Consumer.Commit != CommitTransactional || !c.Producer.Idempotence || c.Consumer.IsolationLevel != "read_committed" {
		t.Errorf("commit %s idempotence %v isolation %s", c.Consumer.Commit, c.Producer.Idempotence, c.Consumer.IsolationLevel)
	}
	plan, err = Parse("t.yaml", []byte("consumer:\n  mode: transform\n  commit: manual-after-processing\n  isolationLevel: read_uncommitted\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := plan.Configs[0]; c.Producer.Idempotence || c.Consumer.IsolationLevel != "read_uncommitted" {
		t.Errorf("without transactions: idempotence %v isolation %s", c.Producer.Idempotence, c.Consumer.IsolationLevel)
	}
	eos, err := Open("claim-13-exactly-once.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var commits []string
	for _, c := range eos.Configs {
		if c.Consumer.Mode != ModeTransform || c.Chaos == nil {
			t.Errorf("%s: mode %s chaos %v", c.Config, c.Consumer.Mode, c.Chaos)
		}
		commits = append(commits, c.Consumer.Commit)
	}
	if strings.Join(commits, ",") != "manual-after-processing,transactional" {
		t.Errorf("commit modes %v", commits)
	}
}
