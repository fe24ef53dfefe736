package clientconfig

import (
	"crypto/tls"
	"fmt"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// KafkaGo returns the TLS configuration and SASL mechanism of segmentio/kafka-go clients (its
// Transport and Dialer take both) that connect as c says. A nil c is plaintext (both nil).
// It fails for what kafka-go cannot do (Resolve with driver kafka-go has refused those already).
func (c *Config) KafkaGo() (*tls.Config, sasl.Mechanism, error) {
	if c == nil {
		return nil, nil, nil
	}
	var tc *tls.Config
	if c.TLS != nil {
		tc = c.TLS.Clone()
	}
	s := c.SASL
	if s == nil {
		return tc, nil, nil
	}
	switch s.Mechanism {
	case MechanismPlain:
		return tc, plain.Mechanism{Username: s.User, Password: s.password}, nil
	case MechanismScramSHA256, MechanismScramSHA512:
		algo := scram.SHA256
		if s.Mechanism == MechanismScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.User, s.password)
		if err != nil {
			return nil, nil, fmt.Errorf("clientconfig: %s: %w", s.Mechanism, err)
		}
		return tc, m, nil
	}
	return nil, nil, fmt.Errorf("clientconfig: sasl.mechanism=%s is not supported by driver kafka-go", s.Mechanism)
}
