package clientconfig

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// Librdkafka returns the librdkafka properties (confluent-kafka-go's ConfigMap entries) of
// clients that connect as c says: security.protocol, the PEM trust store and key pair as
// text (ssl.ca.pem, ssl.certificate.pem, ssl.key.pem; without a trust store the system's
// roots, ssl.ca.location=probe), host name verification, and the SASL mechanism with its
// user and password. A nil c is plaintext (no properties). It fails for what librdkafka
// cannot do here (Resolve with driver confluent has refused those already). The map holds
// the password: never print it.
func (c *Config) Librdkafka() (map[string]string, error) {
	if c == nil {
		return nil, nil
	}
	m := map[string]string{"security.protocol": strings.ToLower(c.Protocol)}
	if c.TLS != nil {
		if len(c.trustPEM) > 0 {
			m["ssl.ca.pem"] = string(c.trustPEM)
		} else {
			m["ssl.ca.location"] = "probe"
		}
		if c.TLS.InsecureSkipVerify {
			// ssl.endpoint.identification.algorithm was empty: the chain is verified, the host
			// name is not.
			m["ssl.endpoint.identification.algorithm"] = "none"
		}
		if len(c.TLS.Certificates) > 0 {
			cert := c.TLS.Certificates[0]
			var chain strings.Builder
			for _, der := range cert.Certificate {
				chain.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
			}
			key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
			if err != nil {
				return nil, fmt.Errorf("clientconfig: key store for driver confluent: %w", err)
			}
			m["ssl.certificate.pem"] = chain.String()
			m["ssl.key.pem"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))
		}
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
			m["sasl.mechanisms"], m["sasl.username"], m["sasl.password"] = s.Mechanism, s.User, s.password
		default:
			return nil, fmt.Errorf("clientconfig: sasl.mechanism=%s is not supported by driver confluent", s.Mechanism)
		}
	}
	return m, nil
}
