package clientconfig

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/kchaos/kchaos/pemstore"
	"github.com/kchaos/kchaos/workloads"
)

const secret = "Hunter2-secret"

func props(t *testing.T, text string) *Properties {
	t.Helper()
	ps, err := ParseProperties("client.properties", 1, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// stores writes a CA trust store and a client key store (key encrypted with keyPassword when
// set) and returns their paths.
func stores(t *testing.T, keyPassword string) (string, string) {
	t.Helper()
	ca, err := pemstore.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ca.Issue("client", []string{"localhost"}, keyPassword)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caPath, ksPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem")
	if err := os.WriteFile(caPath, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ksPath, ks, 0o600); err != nil {
		t.Fatal(err)
	}
	return caPath, ksPath
}

func TestResolveSASLSSL(t *testing.T) {
	ca, ks := stores(t, secret)
	ps := props(t, fmt.Sprintf(`bootstrap.servers=a:9093, b:9093
security.protocol=sasl_ssl
ssl.truststore.type=PEM
ssl.truststore.location=%s
ssl.keystore.type=PEM
ssl.keystore.location=%s
ssl.key.password=%s
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="%s";
acks=all
key.serializer=org.apache.kafka.common.serialization.ByteArraySerializer
`, ca, ks, secret, secret))
	for _, driver := range []string{"franz-go", "sarama", "kafka-go", "confluent"} {
		cfg, err := Resolve(ps, driver)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(cfg.Bootstrap, ",") != "a:9093,b:9093" || cfg.Protocol != SASLSSL || cfg.SASL.User != "alice" ||
			cfg.TLS == nil || len(cfg.TLS.Certificates) != 1 || cfg.TLS.RootCAs == nil {
			t.Fatalf("%s: config %v", driver, cfg)
		}
		if len(cfg.Notes) != 1 || !strings.Contains(cfg.Notes[0], "client.properties:11: key.serializer") {
			t.Fatalf("notes %v, want one for key.serializer", cfg.Notes)
		}
		if len(cfg.FranzOpts()) != 2 {
			t.Fatalf("franz options: %d, want TLS and SASL", len(cfg.FranzOpts()))
		}
		if tc, mech, err := cfg.KafkaGo(); err != nil || tc == nil || len(tc.Certificates) != 1 || mech == nil || mech.Name() != "SCRAM-SHA-512" {
			t.Fatalf("kafka-go: tls %v, mechanism %v, %v", tc != nil, mech, err)
		}
		if driver == "confluent" {
			m, err := cfg.Librdkafka()
			if err != nil {
				t.Fatal(err)
			}
			if m["security.protocol"] != "sasl_ssl" || m["sasl.mechanisms"] != "SCRAM-SHA-512" || m["sasl.username"] != "alice" ||
				!strings.Contains(m["ssl.ca.pem"], "BEGIN CERTIFICATE") || !strings.Contains(m["ssl.certificate.pem"], "BEGIN CERTIFICATE") ||
				!strings.Contains(m["ssl.key.pem"], "BEGIN PRIVATE KEY") {
				t.Fatalf("librdkafka properties: %v", slices.Sorted(maps.Keys(m)))
			}
		}
		sc := sarama.NewConfig()
		if err := cfg.ApplySarama(sc); err != nil {
			t.Fatal(err)
		}
		if !sc.Net.TLS.Enable || !sc.Net.SASL.Enable || sc.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA512 || sc.Net.SASL.SCRAMClientGeneratorFunc == nil {
			t.Fatalf("sarama config: tls %v sasl %v %s", sc.Net.TLS.Enable, sc.Net.SASL.Enable, sc.Net.SASL.Mechanism)
		}
		// Nothing that prints the configuration prints the password.
		js, _ := json.Marshal(cfg.SASL)
		for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.SASL), fmt.Sprintf("%+v", *cfg.SASL), string(js)} {
			if strings.Contains(s, secret) {
				t.Fatalf("%q prints the password", s)
			}
		}
	}
}

func TestResolveRefusesWhatADriverCannotDo(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	ca, ks := stores(t, "")
	for _, tc := range []struct {
		name, text, driver, want string
	}{
		{"unknown property", "security.protocol=SSL\nbuffer.memory=1\n", "sarama", "client.properties:2: buffer.memory: property not supported by driver sarama"},
		{"bad protocol", "security.protocol=TLS\n", "franz-go", `client.properties:1: security.protocol: "TLS" is not allowed`},
		{"ssl without TLS", "ssl.truststore.location=/x\n", "franz-go", "client.properties:1: ssl.truststore.location: set, but security.protocol=PLAINTEXT does not use TLS"},
		{"sasl without SASL", "security.protocol=SSL\nsasl.mechanism=PLAIN\n", "franz-go", "sasl.mechanism: set, but security.protocol=SSL does not use SASL"},
		{"GSSAPI by default", "security.protocol=SASL_PLAINTEXT\nsasl.jaas.config=x required;\n", "franz-go", `"GSSAPI" is not supported by driver franz-go`},
		{"AWS on kafka-go", "security.protocol=SASL_SSL\nsasl.mechanism=AWS_MSK_IAM\nsasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;\n", "kafka-go",
			"client.properties:2: sasl.mechanism: AWS_MSK_IAM is not supported by driver kafka-go"},
		{"OAUTHBEARER on confluent", "security.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER\nsasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;\n", "confluent",
			"client.properties:2: sasl.mechanism: OAUTHBEARER is not supported by driver confluent"},
		{"TLS versions on confluent", "security.protocol=SSL\nssl.enabled.protocols=TLSv1.3\n", "confluent",
			"client.properties:2: ssl.enabled.protocols: property not supported by driver confluent"},
		{"AWS on sarama", "security.protocol=SASL_SSL\nsasl.mechanism=AWS_MSK_IAM\nsasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;\n", "sarama",
			"client.properties:2: sasl.mechanism: AWS_MSK_IAM is not supported by driver sarama"},
		{"module for another mechanism", "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"" + secret + "\";\n", "franz-go",
			"does not log in with PLAIN"},
		{"no password", "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";\n", "franz-go",
			"needs username and password"},
		{"broken jaas", "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required password=\"" + secret + "\n", "franz-go",
			"unterminated quoted value"},
		{"JKS store", "security.protocol=SSL\nssl.truststore.location=" + ca + "\nssl.truststore.type=JKS\n", "franz-go", "JKS stores cannot be read"},
		{"PEM trust store password", "security.protocol=SSL\nssl.truststore.location=" + ca + "\nssl.truststore.password=" + secret + "\n", "franz-go", "a PEM trust store has no password"},
		{"key password without encrypted key", "security.protocol=SSL\nssl.keystore.location=" + ks + "\nssl.key.password=" + secret + "\n", "franz-go", "the private key is not encrypted"},
		{"custom callback handler", "security.protocol=SASL_SSL\nsasl.login.callback.handler.class=com.example.Handler\n", "franz-go", "com.example.Handler cannot run in driver franz-go"},
		{"bad endpoint identification", "security.protocol=SSL\nssl.endpoint.identification.algorithm=ldap\n", "franz-go", `"ldap" is not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(props(t, tc.text), tc.driver)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error contains the secret: %v", err)
			}
		})
	}
}

func TestEncryptedKeyStore(t *testing.T) {
	ca, ks := stores(t, secret)
	base := "security.protocol=SSL\nssl.truststore.location=" + ca + "\nssl.keystore.location=" + ks + "\n"
	if _, err := Resolve(props(t, base), "franz-go"); err == nil || !strings.Contains(err.Error(), "ssl.key.password") {
		t.Fatalf("encrypted key without a password: %v", err)
	}
	_, err := Resolve(props(t, base+"ssl.key.password=wrong-"+secret+"\n"), "franz-go")
	if err == nil || !strings.Contains(err.Error(), "wrong key password") || strings.Contains(err.Error(), secret) {
		t.Fatalf("wrong key password: %v", err)
	}
	cfg, err := Resolve(props(t, base+"ssl.key.password="+secret+"\n"), "franz-go")
	if err != nil || len(cfg.TLS.Certificates) != 1 {
		t.Fatalf("right key password: %v", err)
	}
}

func TestEndpointIdentificationOff(t *testing.T) {
	ca, _ := stores(t, "")
	cfg, err := Resolve(props(t, "security.protocol=SSL\nssl.truststore.location="+ca+"\nssl.endpoint.identification.algorithm=\n"), "franz-go")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.TLS.InsecureSkipVerify || cfg.TLS.VerifyConnection == nil {
		t.Fatal("endpoint identification off must still verify the chain")
	}
	if err := cfg.TLS.VerifyConnection(tls.ConnectionState{}); err == nil {
		t.Fatal("a server without a certificate passed")
	}
}

func TestOAuthTokens(t *testing.T) {
	cfg, err := Resolve(props(t, `security.protocol=SASL_SSL
sasl.mechanism=OAUTHBEARER
sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="alice" extension_traceId="t1";
`), "sarama")
	if err != nil {
		t.Fatal(err)
	}
	tok, ext, err := cfg.SASL.oauth.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if len(parts) != 3 || parts[2] != "" || !strings.Contains(string(claims), `"sub":"alice"`) || ext["traceId"] != "t1" {
		t.Fatalf("unsecured token %q claims %s extensions %v", tok, claims, ext)
	}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		id, pw, ok := r.BasicAuth()
		if !ok || id != "kchaos" || pw != secret || r.FormValue("grant_type") != "client_credentials" || r.FormValue("scope") != "kafka" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"access_token":"tok-123","expires_in":3600}`)
	}))
	defer srv.Close()
	cfg, err = Resolve(props(t, `security.protocol=SASL_SSL
sasl.mechanism=OAUTHBEARER
sasl.oauthbearer.token.endpoint.url=`+srv.URL+`
sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler
sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="kchaos" clientSecret="`+secret+`" scope="kafka";
`), "franz-go")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if tok, _, err := cfg.SASL.oauth.Token(context.Background()); err != nil || tok != "tok-123" {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	if calls != 1 {
		t.Fatalf("token endpoint called %d times, want 1 (the token is reused)", calls)
	}
}

func TestParseOMBDriver(t *testing.T) {
	d, err := ParseOMBDriver("kafka.yaml", []byte(`name: Kafka
driverClass: io.openmessaging.benchmark.driver.kafka.KafkaBenchmarkDriver

# Kafka client-specific configuration
replicationFactor: 3
reset: true
topicConfig: |
  min.insync.replicas=2
commonConfig: |
  bootstrap.servers=localhost:9092
  default.api.timeout.ms=1200000
  request.timeout.ms=1200000
producerConfig: |
  acks=all
  linger.ms=1
  batch.size=1048576
consumerConfig: |
  auto.offset.reset=earliest
  enable.auto.commit=false
  max.partition.fetch.bytes=10485760
`))
	if err != nil {
		t.Fatal(err)
	}
	if d.ReplicationFactor != 3 || !d.Reset || d.TopicConfig.Value("min.insync.replicas") != "2" || d.Common.Len() != 3 ||
		d.Producer.Value("batch.size") != "1048576" || d.Consumer.Value("enable.auto.commit") != "false" {
		t.Fatalf("driver %+v", d)
	}
	if p, _ := d.Producer.Get("linger.ms"); p.Where != "kafka.yaml:15" {
		t.Fatalf("linger.ms at %s, want kafka.yaml:15 (the file's own line)", p.Where)
	}
	for _, tc := range []struct{ text, want string }{
		{"driverClass: io.openmessaging.benchmark.driver.pulsar.PulsarBenchmarkDriver\n", "kafka.yaml:1: driverClass"},
		{"name: x\nunknownField: 1\n", "unknown field"},
		{"name: x\nproducerConfig: |\n  ok=1\n  bad=\\u12\n", "kafka.yaml:4: bad: malformed"},
		{"replicationFactor: -1\n", "replicationFactor: -1 is not allowed"},
	} {
		if _, err := ParseOMBDriver("kafka.yaml", []byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseOMBDriver(%q) = %v, want %q", tc.text, err, tc.want)
		}
	}
}

func TestFromRunRefusesPerClientConnections(t *testing.T) {
	rc := &workloads.RunConfig{Client: []workloads.ClientProperty{
		{Key: "security.protocol", Value: "SSL", Where: "kafka.yaml:9"},
		{Key: "sasl.mechanism", Value: "PLAIN", Where: "kafka.yaml:14", Scope: workloads.ScopeProducer},
	}}
	if _, err := FromRun(rc); err == nil || !strings.Contains(err.Error(), "kafka.yaml:14: sasl.mechanism given for the producer clients only") {
		t.Fatalf("err = %v", err)
	}
	rc.Client[1] = workloads.ClientProperty{Key: "buffer.memory", Value: "1", Where: "kafka.yaml:14", Scope: workloads.ScopeProducer}
	ps, err := FromRun(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(ps, "sarama"); err == nil || !strings.Contains(err.Error(), "kafka.yaml:14: buffer.memory: property not supported by driver sarama") {
		t.Fatalf("err = %v", err)
	}
}
