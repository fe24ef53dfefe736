package broker_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/pemstore"
)

// secureBroker is an in-process broker (a controller quorum of one, which keeps SCRAM
// credentials) with SSL, SASL_PLAINTEXT and SASL_SSL listeners beside its plaintext one, a
// CA of its own, PLAIN user alice and SCRAM-SHA-256/512 user bob.
type secureBroker struct {
	b      *broker.Broker
	dir    string
	ca     string // trust store path
	caPEM  []byte
	caSelf *pemstore.CA
}

const (
	alicePassword = "alice-Secret-1"
	bobPassword   = "bob-Secret-2"
)

func startSecureBroker(t testing.TB, extra map[string]string) *secureBroker {
	t.Helper()
	dir := t.TempDir()
	ca, err := pemstore.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ca.Issue("broker", []string{"127.0.0.1", "localhost"}, "key-Pass")
	if err != nil {
		t.Fatal(err)
	}
	sb := &secureBroker{dir: dir, ca: filepath.Join(dir, "ca.pem"), caPEM: ca.CertPEM, caSelf: ca}
	writeFile(t, sb.ca, ca.CertPEM)
	writeFile(t, filepath.Join(dir, "broker.pem"), ks)
	jaas := `org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="` + alicePassword + `";`
	props := map[string]string{
		"listeners":             "SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
		"ssl.keystore.type":     "PEM",
		"ssl.keystore.location": filepath.Join(dir, "broker.pem"),
		"ssl.key.password":      "key-Pass",
		"listener.name.sasl_ssl.plain.sasl.jaas.config":       jaas,
		"listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
		"offsets.topic.replication.factor":                    "1",
		"transaction.state.log.replication.factor":            "1",
		"group.initial.rebalance.delay.ms":                    "0",
		"broker.heartbeat.interval.ms":                        "200",
	}
	for k, v := range extra {
		props[k] = strings.ReplaceAll(v, "{ca}", sb.ca) // {ca}: the trust store's path
	}
	// No Voters: the broker opens its Raft listener on an ephemeral port itself. A port found
	// free a moment before was once taken by another test's process in between (bind: address
	// already in use).
	b, err := broker.New(broker.Config{NodeID: 1, Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), Props: props},
		broker.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	sb.b = b
	waitRegistered(t, b.Addr())
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		if err := local.CreateScramUser(ctx(t, 20*time.Second), b.Addr(), mech, "bob", bobPassword); err != nil {
			t.Fatal(err)
		}
	}
	return sb
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitRegistered waits until the broker lists itself in Metadata (registered and unfenced).
func waitRegistered(t testing.TB, addr string) {
	t.Helper()
	cl := newClient(t, addr)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx(t, 2*time.Second), cl)
		if err == nil && len(resp.Brokers) == 1 && resp.ControllerID == 1 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("broker did not register with its controller")
}

// props builds client properties for the listener called name.
func (sb *secureBroker) props(name, mechanism, user, password string) *clientconfig.Properties {
	ps := &clientconfig.Properties{}
	ps.Set("bootstrap.servers", sb.b.ListenerAddr(name), "test")
	ps.Set("security.protocol", name, "test")
	if name == "SSL" || name == "SASL_SSL" {
		ps.Set("ssl.truststore.type", "PEM", "test")
		ps.Set("ssl.truststore.location", sb.ca, "test")
	}
	if mechanism != "" {
		module := "org.apache.kafka.common.security.scram.ScramLoginModule"
		if mechanism == "PLAIN" {
			module = "org.apache.kafka.common.security.plain.PlainLoginModule"
		}
		ps.Set("sasl.mechanism", mechanism, "test")
		ps.Set("sasl.jaas.config", fmt.Sprintf(`%s required username="%s" password="%s";`, module, user, password), "test")
	}
	return ps
}

// franzClient returns a franz-go client configured from ps.
func franzClient(t testing.TB, ps *clientconfig.Properties, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cfg, err := clientconfig.Resolve(ps, "franz-go")
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]kgo.Opt{kgo.SeedBrokers(cfg.Bootstrap...)}, cfg.FranzOpts()...), opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceConsume produces n records to topic through cl and reads them back.
func produceConsume(t *testing.T, cl *kgo.Client, topic string, n int) error {
	t.Helper()
	createTopic(t, cl, topic, 1, nil)
	for i := range n {
		if err := cl.ProduceSync(ctx(t, 10*time.Second), &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			return err
		}
	}
	cl.AddConsumeTopics(topic)
	got := 0
	c := ctx(t, 15*time.Second)
	for got < n {
		fs := cl.PollFetches(c)
		if err := c.Err(); err != nil {
			return fmt.Errorf("read %d of %d records: %w", got, n, err)
		}
		for _, e := range fs.Errors() {
			if !kerr.IsRetriable(e.Err) {
				return e.Err
			}
		}
		got += fs.NumRecords()
	}
	return nil
}

func TestSecureListenersServeFranzGo(t *testing.T) {
	sb := startSecureBroker(t, nil)
	for _, tc := range []struct{ listener, mechanism, user, password string }{
		{"SSL", "", "", ""},
		{"SASL_SSL", "PLAIN", "alice", alicePassword},
		{"SASL_SSL", "SCRAM-SHA-256", "bob", bobPassword},
		{"SASL_SSL", "SCRAM-SHA-512", "bob", bobPassword},
		{"SASL_PLAINTEXT", "SCRAM-SHA-512", "bob", bobPassword},
	} {
		t.Run(tc.listener+"/"+tc.mechanism, func(t *testing.T) {
			cl := franzClient(t, sb.props(tc.listener, tc.mechanism, tc.user, tc.password))
			topic := "franz-" + tc.listener + "-" + tc.mechanism
			if err := produceConsume(t, cl, topic, 20); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSecureListenersServeSarama(t *testing.T) {
	sb := startSecureBroker(t, nil)
	for _, tc := range []struct {
		listener, mechanism, user, password string
		handshakeV0                         bool
	}{
		{"SASL_SSL", "PLAIN", "alice", alicePassword, false},
		{"SASL_SSL", "PLAIN", "alice", alicePassword, true},
		{"SASL_SSL", "SCRAM-SHA-512", "bob", bobPassword, false},
		{"SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", bobPassword, false},
	} {
		t.Run(fmt.Sprintf("%s/%s/v0=%v", tc.listener, tc.mechanism, tc.handshakeV0), func(t *testing.T) {
			cfg := secureSaramaConfig(t, sb.props(tc.listener, tc.mechanism, tc.user, tc.password))
			if tc.handshakeV0 {
				cfg.Net.SASL.Version = sarama.SASLHandshakeV0
				cfg.ApiVersionsRequest = false
				cfg.Version = sarama.V1_0_0_0
			}
			topic := fmt.Sprintf("sarama-%s-%s-%v", tc.listener, tc.mechanism, tc.handshakeV0)
			createTopic(t, newClient(t, sb.b.Addr()), topic, 1, nil)
			if err := saramaRoundTrip(sb.b.ListenerAddr(tc.listener), cfg, topic); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func secureSaramaConfig(t *testing.T, ps *clientconfig.Properties) *sarama.Config {
	t.Helper()
	cc, err := clientconfig.Resolve(ps, "sarama")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Metadata.Retry.Max = 2
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	if err := cc.ApplySarama(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// saramaRoundTrip produces ten records with Sarama and consumes them from partition 0.
func saramaRoundTrip(addr string, cfg *sarama.Config, topic string) error {
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	for i := range 10 {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(strconv.Itoa(i))}); err != nil {
			return err
		}
	}
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return err
	}
	defer pc.Close()
	for i := range 10 {
		select {
		case m := <-pc.Messages():
			if string(m.Value) != strconv.Itoa(i) {
				return fmt.Errorf("record %d is %q", i, m.Value)
			}
		case err := <-pc.Errors():
			return err
		case <-time.After(10 * time.Second):
			return fmt.Errorf("record %d did not arrive", i)
		}
	}
	return nil
}

func TestSecureListenersRefuse(t *testing.T) {
	sb := startSecureBroker(t, nil)
	quick := []kgo.Opt{kgo.RetryTimeout(3 * time.Second), kgo.RequestRetries(1)}
	t.Run("wrong password franz-go", func(t *testing.T) {
		cl := franzClient(t, sb.props("SASL_SSL", "SCRAM-SHA-512", "bob", "not-bobs"), quick...)
		err := cl.Ping(ctx(t, 10*time.Second))
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("ping with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})
	t.Run("wrong password plain", func(t *testing.T) {
		cl := franzClient(t, sb.props("SASL_PLAINTEXT", "PLAIN", "alice", "nope"), quick...)
		if err := cl.Ping(ctx(t, 10*time.Second)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("ping: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})
	t.Run("wrong password sarama", func(t *testing.T) {
		cfg := secureSaramaConfig(t, sb.props("SASL_SSL", "PLAIN", "alice", "nope"))
		err := saramaRoundTrip(sb.b.ListenerAddr("SASL_SSL"), cfg, "sarama-refused")
		if err == nil {
			t.Fatal("sarama with a wrong password produced")
		}
	})
	t.Run("plaintext client on the TLS port", func(t *testing.T) {
		ps := sb.props("SASL_SSL", "PLAIN", "alice", alicePassword)
		ps.Set("security.protocol", "SASL_PLAINTEXT", "test")
		ps.Delete("ssl.truststore.type")
		ps.Delete("ssl.truststore.location")
		cl := franzClient(t, ps, quick...)
		if err := cl.Ping(ctx(t, 10*time.Second)); err == nil {
			t.Fatal("a client without TLS reached the SASL_SSL listener")
		}
	})
	t.Run("untrusted CA", func(t *testing.T) {
		other, err := pemstore.NewCA("another CA")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "other.pem")
		writeFile(t, path, other.CertPEM)
		ps := sb.props("SSL", "", "", "")
		ps.Set("ssl.truststore.location", path, "test")
		cl := franzClient(t, ps, quick...)
		err = cl.Ping(ctx(t, 10*time.Second))
		var unknown x509.UnknownAuthorityError
		if err == nil || !errors.As(err, &unknown) {
			t.Fatalf("ping trusting another CA: %v, want an unknown authority error", err)
		}
	})
	t.Run("unsupported mechanism", func(t *testing.T) {
		c := dialTLS(t, sb)
		resp := c.roundTrip(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "GSSAPI"}).(*kmsg.SASLHandshakeResponse)
		if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(resp.SupportedMechanisms) != 3 {
			t.Fatalf("handshake GSSAPI: code %d mechanisms %v", resp.ErrorCode, resp.SupportedMechanisms)
		}
		c.expectClosed("after UNSUPPORTED_SASL_MECHANISM")
	})
	t.Run("request before authentication", func(t *testing.T) {
		c := dialTLS(t, sb)
		c.roundTrip(&kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "t", ClientSoftwareVersion: "1"})
		c.write(c.frame(kmsg.NewPtrMetadataRequest()))
		c.expectClosed("Metadata before authentication")
	})
	t.Run("wrong password closes the connection", func(t *testing.T) {
		c := dialTLS(t, sb)
		c.roundTrip(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"})
		resp := c.roundTrip(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00wrong")}).(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("authenticate: code %d, want SASL_AUTHENTICATION_FAILED", resp.ErrorCode)
		}
		if m := deref(resp.ErrorMessage); m == "" || strings.Contains(m, "wrong") || strings.Contains(m, "alice") {
			t.Fatalf("error message %q names the input", m)
		}
		c.expectClosed("after SASL_AUTHENTICATION_FAILED")
	})
	// The broker is still serving after all that.
	if err := produceConsume(t, franzClient(t, sb.props("SASL_SSL", "PLAIN", "alice", alicePassword)), "after-refusals", 5); err != nil {
		t.Fatal(err)
	}
}

// dialTLS opens a raw connection to the SASL_SSL listener, trusting the test CA.
func dialTLS(t *testing.T, sb *secureBroker) *rawConn {
	t.Helper()
	pool, err := pemstore.TrustStore(sb.caPEM)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	nc, err := tls.DialWithDialer(d, "tcp", sb.b.ListenerAddr("SASL_SSL"), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// kcatSecure runs kcat against the SASL_SSL listener with extra -X settings and returns its
// output or error (with its stderr); it gives up after 30s.
func kcatSecure(t *testing.T, sb *secureBroker, stdin string, args ...string) (string, error) {
	t.Helper()
	all := []string{"-b", sb.b.ListenerAddr("SASL_SSL"), "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + sb.ca}
	cmd := exec.Command("kcat", append(all, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("kcat: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
		}
		return stdout.String(), nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return "", fmt.Errorf("no exit after 30s: %s", stderr.String())
	}
}

func TestSecureListenersServeKcat(t *testing.T) {
	sb := startSecureBroker(t, nil)
	for _, tc := range []struct{ mechanism, user, password string }{
		{"PLAIN", "alice", alicePassword},
		{"SCRAM-SHA-512", "bob", bobPassword},
		{"SCRAM-SHA-256", "bob", bobPassword},
	} {
		t.Run(tc.mechanism, func(t *testing.T) {
			topic := "kcat-" + tc.mechanism
			createTopic(t, newClient(t, sb.b.Addr()), topic, 1, nil)
			login := []string{"-X", "sasl.mechanism=" + tc.mechanism, "-X", "sasl.username=" + tc.user, "-X", "sasl.password=" + tc.password}
			if _, err := kcatSecure(t, sb, "one\ntwo\nthree\n", append(login, "-P", "-t", topic)...); err != nil {
				t.Fatal(err)
			}
			out, err := kcatSecure(t, sb, "", append(login, "-C", "-t", topic, "-o", "beginning", "-e", "-q")...)
			if err != nil {
				t.Fatal(err)
			}
			if out != "one\ntwo\nthree\n" {
				t.Fatalf("kcat read %q", out)
			}
			login[5] = "sasl.password=wrong-" + tc.password
			if out, err := kcatSecure(t, sb, "", append(login, "-L", "-m", "3")...); err == nil {
				t.Fatalf("kcat -L with a wrong password succeeded:\n%s", out)
			}
		})
	}
	// Without TLS the SASL_SSL listener never answers kcat's requests.
	cmd := exec.Command("kcat", "-b", sb.b.ListenerAddr("SASL_SSL"), "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanism=PLAIN",
		"-X", "sasl.username=alice", "-X", "sasl.password="+alicePassword, "-L", "-m", "3")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("kcat without TLS listed metadata:\n%s", out)
	}
}
