package broker_test

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/internal/testkit"
)

// Config administration through the Python clients an operator might use: kafka-python
// (Debian python3-kafka) and librdkafka through confluent-kafka (python3-confluent-kafka),
// run with Debian's /usr/bin/python3. Both send the older AlterConfigs and DescribeConfigs;
// what they set is read back with franz-go's kadm.

// runPythonScript runs script with args under systemPython once module imports, and decodes the
// JSON object it prints into out. A missing module skips the test (fails it under
// KCHAOS_REQUIRE_ALL).
func runPythonScript(t *testing.T, module, pkg, script string, out any, args ...string) {
	t.Helper()
	if msg, err := exec.Command(systemPython, "-c", "import "+module).CombinedOutput(); err != nil {
		testkit.Need(t, pkg+" (Debian) for "+systemPython, &pyError{err, msg})
	}
	res, err := exec.Command(systemPython, append([]string{"-c", script}, args...)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s script: %v\n%s", module, err, stderr)
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("%s script printed %q: %v", module, res, err)
	}
}

type pyError struct {
	err error
	out []byte
}

func (e *pyError) Error() string { return e.err.Error() + ": " + string(e.out) }

// kafkaPythonConfigs sets a cluster-wide broker default and a topic override with
// AlterConfigs, tries a read-only key, and reports what DescribeConfigs (with synonyms) says.
const kafkaPythonConfigs = `
import json, sys
from kafka.admin import KafkaAdminClient, ConfigResource, ConfigResourceType
a = KafkaAdminClient(bootstrap_servers=sys.argv[1])
out = {}
r = a.alter_configs([ConfigResource(ConfigResourceType.BROKER, "", configs={"log.retention.ms": "123456"}),
                     ConfigResource(ConfigResourceType.TOPIC, "py", configs={"retention.ms": "654321"})])
out["alter"] = [res[0] for res in r.resources]
r = a.alter_configs([ConfigResource(ConfigResourceType.BROKER, "", configs={"num.partitions": "3"})])
out["readonly"] = [res[0] for res in r.resources]
out["describe"] = {}
for resp in a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1"), ConfigResource(ConfigResourceType.TOPIC, "py")], include_synonyms=True):
    for res in resp.resources:
        for e in res[4]:
            if e[0] in ("log.retention.ms", "retention.ms", "num.partitions"):
                out["describe"][res[3] + "/" + e[0]] = {"value": e[1], "readOnly": e[2], "source": e[3], "synonyms": [s[2] for s in e[5]]}
print(json.dumps(out))
`

// TestKafkaPythonAlterConfigs: kafka-python's alter_configs and describe_configs on broker
// and topic resources.
func TestKafkaPythonAlterConfigs(t *testing.T) {
	p := brokertest.Start(t)
	cl := newClient(t, p.Addr())
	createTopic(t, cl, "py", 1, nil)
	type entry struct {
		Value    string `json:"value"`
		ReadOnly bool   `json:"readOnly"`
		Source   int8   `json:"source"`
		Synonyms []int8 `json:"synonyms"`
	}
	var out struct {
		Alter    []int16          `json:"alter"`
		ReadOnly []int16          `json:"readonly"`
		Describe map[string]entry `json:"describe"`
	}
	runPythonScript(t, "kafka", "python3-kafka", kafkaPythonConfigs, &out, p.Addr())
	if len(out.Alter) != 2 || out.Alter[0] != 0 || out.Alter[1] != 0 {
		t.Fatalf("alter_configs: error codes %v", out.Alter)
	}
	if len(out.ReadOnly) != 1 || out.ReadOnly[0] != 42 {
		t.Fatalf("alter_configs of num.partitions: error codes %v, want INVALID_REQUEST (42)", out.ReadOnly)
	}
	want := map[string]entry{
		"1/log.retention.ms": {"123456", false, int8(kmsg.ConfigSourceDynamicDefaultBrokerConfig), []int8{3, 5}},
		"1/num.partitions":   {"1", true, int8(kmsg.ConfigSourceDefaultConfig), []int8{5}},
		"py/retention.ms":    {"654321", false, int8(kmsg.ConfigSourceDynamicTopicConfig), []int8{1, 3, 5}},
	}
	for k, w := range want {
		got := out.Describe[k]
		if got.Value != w.Value || got.ReadOnly != w.ReadOnly || got.Source != w.Source || len(got.Synonyms) != len(w.Synonyms) {
			t.Errorf("describe_configs %s: %+v, want %+v", k, got, w)
		}
	}

	// franz-go reads back what kafka-python wrote.
	adm := kadm.NewClient(cl)
	if c, ok := brokerConfig(t, adm, "", "log.retention.ms"); !ok || *c.Value != "123456" {
		t.Fatalf("kadm reads the cluster default log.retention.ms as %+v", c)
	}
	if tc := describeTopicConfigs(t, cl, "py")["retention.ms"]; deref(tc.Value) != "654321" || tc.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("kadm reads py's retention.ms as %s from %v", deref(tc.Value), tc.Source)
	}
}

// confluentConfigs sets broker 1's own log.flush.interval.messages with librdkafka's
// AlterConfigs, tries a read-only key, and reports what DescribeConfigs says.
const confluentConfigs = `
import json, sys
from confluent_kafka.admin import AdminClient, ConfigResource
a = AdminClient({"bootstrap.servers": sys.argv[1]})
out = {"describe": {}}
for res, f in a.alter_configs([ConfigResource("broker", "1", set_config={"log.flush.interval.messages": "1000"})]).items():
    f.result(timeout=10)
for res, f in a.alter_configs([ConfigResource("broker", "1", set_config={"replica.lag.time.max.ms": "1000"})]).items():
    try:
        f.result(timeout=10)
        out["readonly"] = "accepted"
    except Exception as e:
        out["readonly"] = e.args[0].name()
for res, f in a.describe_configs([ConfigResource("broker", "1"), ConfigResource("topic", "rd")]).items():
    for k, e in f.result(timeout=10).items():
        if k in ("log.flush.interval.messages", "flush.messages", "replica.lag.time.max.ms"):
            out["describe"][res.name + "/" + k] = {"value": e.value, "readOnly": e.is_read_only, "source": int(e.source)}
print(json.dumps(out))
`

// TestConfluentKafkaAlterConfigs: librdkafka's (confluent-kafka's) alter_configs and
// describe_configs on a broker resource, and a topic following the broker's dynamic config.
func TestConfluentKafkaAlterConfigs(t *testing.T) {
	p := brokertest.Start(t)
	cl := newClient(t, p.Addr())
	createTopic(t, cl, "rd", 1, nil)
	type entry struct {
		Value    string `json:"value"`
		ReadOnly bool   `json:"readOnly"`
		Source   int8   `json:"source"`
	}
	var out struct {
		ReadOnly string           `json:"readonly"`
		Describe map[string]entry `json:"describe"`
	}
	runPythonScript(t, "confluent_kafka", "python3-confluent-kafka", confluentConfigs, &out, p.Addr())
	if out.ReadOnly != "INVALID_REQUEST" {
		t.Errorf("alter_configs of replica.lag.time.max.ms: %s, want INVALID_REQUEST", out.ReadOnly)
	}
	want := map[string]entry{
		"1/log.flush.interval.messages": {"1000", false, int8(kmsg.ConfigSourceDynamicBrokerConfig)},
		"1/replica.lag.time.max.ms":     {"30000", true, int8(kmsg.ConfigSourceDefaultConfig)},
		"rd/flush.messages":             {"1000", false, int8(kmsg.ConfigSourceDynamicBrokerConfig)},
	}
	for k, w := range want {
		if got := out.Describe[k]; got != w {
			t.Errorf("describe_configs %s: %+v, want %+v", k, got, w)
		}
	}
	adm := kadm.NewClient(cl)
	if c, ok := brokerConfig(t, adm, "1", "log.flush.interval.messages"); !ok || *c.Value != "1000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("kadm reads broker 1's log.flush.interval.messages as %+v", c)
	}
}
