// Package clientconfig reads Kafka client configuration the way Kafka's own tools take it —
// Java .properties files (--client-config, the file a user already passes to
// kafka-console-producer --producer.config), OpenMessaging Benchmark Kafka driver files, and a
// workload's client: map — and turns the connection part into what kchaos's clients need: a
// TLS configuration (PEM trust and key stores), a SASL login (PLAIN, SCRAM-SHA-256/512,
// OAUTHBEARER, AWS_MSK_IAM) and the bootstrap servers, as options for franz-go (FranzOpts) and
// Sarama (ApplySarama). The producer and consumer properties (acks, linger.ms, fetch.min.bytes,
// ...) are workload settings: package workloads maps them onto a run's fields.
//
// Secrets (passwords, key passwords, OAuth client secrets and tokens) stay inside: errors name
// a property and where it was set, never its value; Config and SASL print without them.
package clientconfig

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/kchaos/kchaos/workloads"
)

// Security protocols (security.protocol).
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// Config is how every client of a run reaches and authenticates to the cluster.
type Config struct {
	// Bootstrap are the bootstrap.servers; nil when not set.
	Bootstrap []string
	// Protocol is security.protocol; default PLAINTEXT.
	Protocol string
	// TLS configures SSL and SASL_SSL connections; nil for the others.
	TLS *tls.Config
	// SASL is the login of SASL_PLAINTEXT and SASL_SSL connections; nil for the others.
	SASL *SASL
	// Notes name properties accepted without effect on a kchaos client (serializers: kchaos
	// sends bytes), for the caller to print.
	Notes []string
	// trustPEM is the trust store's PEM text, kept for librdkafka (driver confluent only).
	trustPEM []byte
}

// String describes the configuration without secrets: "SASL_SSL, SCRAM-SHA-512 as alice".
func (c *Config) String() string {
	if c == nil {
		return Plaintext
	}
	if c.SASL != nil {
		return c.Protocol + ", " + c.SASL.String()
	}
	return c.Protocol
}

// GoString is String, so %#v prints no secret either.
func (c *Config) GoString() string { return c.String() }

// connectionKeys are the properties Resolve reads.
var connectionKeys = map[string]bool{
	"bootstrap.servers":                     true,
	"security.protocol":                     true,
	"ssl.truststore.type":                   true,
	"ssl.truststore.location":               true,
	"ssl.truststore.certificates":           true,
	"ssl.truststore.password":               true,
	"ssl.keystore.type":                     true,
	"ssl.keystore.location":                 true,
	"ssl.keystore.key":                      true,
	"ssl.keystore.certificate.chain":        true,
	"ssl.keystore.password":                 true,
	"ssl.key.password":                      true,
	"ssl.endpoint.identification.algorithm": true,
	"ssl.protocol":                          true,
	"ssl.enabled.protocols":                 true,
	"sasl.mechanism":                        true,
	"sasl.jaas.config":                      true,
	"sasl.oauthbearer.token.endpoint.url":   true,
	"sasl.login.callback.handler.class":     true,
	"sasl.client.callback.handler.class":    true,
}

// notedKeys are accepted and have no effect on a kchaos client; the reason is printed.
var notedKeys = map[string]string{
	"client.id":              "kchaos names each client (kchaos-p0, kchaos-c1, ...)",
	"key.serializer":         "kchaos sends and reads raw bytes",
	"value.serializer":       "kchaos sends and reads raw bytes",
	"key.deserializer":       "kchaos sends and reads raw bytes",
	"value.deserializer":     "kchaos sends and reads raw bytes",
	"default.api.timeout.ms": "kchaos bounds each blocking call itself",
	"client.dns.lookup":      "the drivers try every address a name resolves to",
}

// callbackHandlers are the callback handler classes whose behaviour kchaos implements.
var callbackHandlers = map[string][]string{
	"sasl.login.callback.handler.class": {
		"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
		"org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
		"org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredLoginCallbackHandler",
	},
	"sasl.client.callback.handler.class": {"software.amazon.msk.auth.iam.IAMClientCallbackHandler"},
}

// IsSecret reports whether a property's value must never be printed.
func IsSecret(key string) bool {
	return strings.Contains(key, "password") || key == "sasl.jaas.config" || key == "ssl.keystore.key" ||
		strings.HasSuffix(key, ".sasl.jaas.config")
}

// Resolve reads the connection properties of ps for clients of driver (franz-go, sarama,
// kafka-go or confluent).
// Producer and consumer properties (workloads.IsClientSetting) are left to the workload; any
// other property is an error naming it, where it was set and the driver, as is anything the
// driver cannot do. A nil ps is a plaintext connection.
func Resolve(ps *Properties, driver string) (*Config, error) {
	if ps == nil {
		ps = &Properties{}
	}
	if driver == "" {
		driver = "franz-go"
	}
	c := &Config{Protocol: Plaintext}
	for _, p := range ps.List() {
		switch {
		case connectionKeys[p.Key], workloads.IsClientSetting(p.Key):
		case notedKeys[p.Key] != "":
			c.Notes = append(c.Notes, fmt.Sprintf("%s has no effect: %s", p, notedKeys[p.Key]))
		default:
			return nil, fmt.Errorf("clientconfig: %s: property not supported by driver %s", p, driver)
		}
	}
	for key, allowed := range callbackHandlers {
		if p, ok := ps.Get(key); ok && !slices.Contains(allowed, p.Value) {
			return nil, fmt.Errorf("clientconfig: %s: %s cannot run in driver %s; allowed: %s", p, p.Value, driver, strings.Join(allowed, ", "))
		}
	}
	if p, ok := ps.Get("bootstrap.servers"); ok {
		for _, s := range strings.Split(p.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.Bootstrap = append(c.Bootstrap, s)
			}
		}
		if len(c.Bootstrap) == 0 {
			return nil, fmt.Errorf("clientconfig: %s: empty", p)
		}
	}
	if p, ok := ps.Get("security.protocol"); ok {
		c.Protocol = strings.ToUpper(p.Value)
		if !slices.Contains([]string{Plaintext, SSL, SASLPlaintext, SASLSSL}, c.Protocol) {
			return nil, fmt.Errorf("clientconfig: %s: %q is not allowed; allowed: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL", p, p.Value)
		}
	}
	usesTLS := c.Protocol == SSL || c.Protocol == SASLSSL
	usesSASL := c.Protocol == SASLPlaintext || c.Protocol == SASLSSL
	for _, p := range ps.List() {
		switch {
		case !usesTLS && strings.HasPrefix(p.Key, "ssl."):
			return nil, fmt.Errorf("clientconfig: %s: set, but security.protocol=%s does not use TLS", p, c.Protocol)
		case !usesSASL && strings.HasPrefix(p.Key, "sasl."):
			return nil, fmt.Errorf("clientconfig: %s: set, but security.protocol=%s does not use SASL", p, c.Protocol)
		}
	}
	var err error
	if usesTLS {
		if c.TLS, err = tlsConfig(ps); err != nil {
			return nil, err
		}
		if driver == "confluent" {
			// librdkafka takes PEM text and negotiates the TLS version itself.
			for _, k := range []string{"ssl.protocol", "ssl.enabled.protocols"} {
				if p, ok := ps.Get(k); ok {
					return nil, fmt.Errorf("clientconfig: %s: property not supported by driver confluent (librdkafka negotiates the TLS version)", p)
				}
			}
			if c.trustPEM, _, err = readStore(ps, "ssl.truststore.certificates", "ssl.truststore.location"); err != nil {
				return nil, err
			}
		}
	}
	if usesSASL {
		if c.SASL, err = saslConfig(ps, driver); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// FromRun returns a run's client properties (the workload's client: map and the properties
// given with it, see workloads.Options) as Properties. Every client of a run connects alike,
// so a property of how to connect given for producers or consumers only (an OMB driver's
// producerConfig or consumerConfig) is an error: it belongs in commonConfig.
func FromRun(rc *workloads.RunConfig) (*Properties, error) {
	ps := &Properties{}
	for _, p := range rc.Client {
		if p.Scope != "" && connectionKeys[p.Key] {
			return nil, fmt.Errorf("clientconfig: %s: %s given for the %s clients only; every client of a run connects alike: put it in commonConfig", p.Where, p.Key, p.Scope)
		}
		ps.Set(p.Key, p.Value, p.Where)
	}
	return ps, nil
}
