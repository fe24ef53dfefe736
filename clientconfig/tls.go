package clientconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kchaos/kchaos/pemstore"
)

// tlsConfig builds the TLS configuration of SSL and SASL_SSL from the ssl.* properties:
// PEM trust and key stores (files or inline, KIP-651), ssl.key.password for an encrypted
// PKCS#8 key, endpoint identification (hostname verification, on unless
// ssl.endpoint.identification.algorithm is empty) and the protocol versions. Without a trust
// store the system's roots are trusted, as the JVM's default trust store would be.
func tlsConfig(ps *Properties) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	roots, err := trustStore(ps)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = roots
	cert, err := keyStore(ps)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if err := tlsVersions(ps, cfg); err != nil {
		return nil, err
	}
	if p, ok := ps.Get("ssl.endpoint.identification.algorithm"); ok {
		switch strings.ToLower(p.Value) {
		case "https":
		case "":
			// The chain is still verified against the trust store; only the host name is not.
			cfg.InsecureSkipVerify = true
			cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
		default:
			return nil, fmt.Errorf("clientconfig: %s: %q is not allowed; allowed: https, or empty to skip host name verification", p, p.Value)
		}
	}
	return cfg, nil
}

// verifyChain verifies the server's chain against roots without checking its host name.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("clientconfig: server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

// storeType checks a store's type: PEM, or unset for a file that is PEM (the Java client's
// default JKS cannot be read here).
func storeType(ps *Properties, key string, data []byte) error {
	p, ok := ps.Get(key)
	if ok && strings.EqualFold(p.Value, "PEM") {
		return nil
	}
	if !ok && bytes.Contains(data, []byte("-----BEGIN ")) {
		return nil
	}
	what := "the default JKS"
	if ok {
		what = p.Value
	}
	return fmt.Errorf("clientconfig: %s: %s stores cannot be read; set %s=PEM and convert the store to PEM (keytool -exportcert -rfc, openssl pkcs12 -nodes)", where(ps, key), what, key)
}

// where names the source of key, or key alone when it is not set.
func where(ps *Properties, key string) string {
	if p, ok := ps.Get(key); ok {
		return p.String()
	}
	return key
}

// readStore returns the PEM text of a store: the inline property, else the file.
func readStore(ps *Properties, inline, location string) ([]byte, string, error) {
	if p, ok := ps.Get(inline); ok {
		if _, dup := ps.Get(location); dup {
			return nil, "", fmt.Errorf("clientconfig: %s and %s are both set; keep one", p, where(ps, location))
		}
		return []byte(p.Value), p.String(), nil
	}
	p, ok := ps.Get(location)
	if !ok {
		return nil, "", nil
	}
	data, err := os.ReadFile(p.Value)
	if err != nil {
		return nil, "", fmt.Errorf("clientconfig: %s: %w", p, err)
	}
	return data, p.String(), nil
}

func trustStore(ps *Properties) (*x509.CertPool, error) {
	data, src, err := readStore(ps, "ssl.truststore.certificates", "ssl.truststore.location")
	if err != nil || src == "" {
		if p, ok := ps.Get("ssl.truststore.password"); ok && err == nil {
			return nil, fmt.Errorf("clientconfig: %s is set without a trust store", p)
		}
		return nil, err
	}
	if err := storeType(ps, "ssl.truststore.type", data); err != nil {
		return nil, err
	}
	if p, ok := ps.Get("ssl.truststore.password"); ok {
		return nil, fmt.Errorf("clientconfig: %s: a PEM trust store has no password; remove it", p)
	}
	pool, err := pemstore.TrustStore(data)
	if err != nil {
		return nil, fmt.Errorf("clientconfig: %s: %w", src, err)
	}
	return pool, nil
}

// keyStore reads the client certificate chain and its private key (mTLS): one PEM file (or
// ssl.keystore.key plus ssl.keystore.certificate.chain) holding the key and the chain (see
// package pemstore), an encrypted key decrypted with ssl.key.password.
func keyStore(ps *Properties) (*tls.Certificate, error) {
	var keyPEM, chainPEM []byte
	var src string
	if p, ok := ps.Get("ssl.keystore.key"); ok {
		if l, dup := ps.Get("ssl.keystore.location"); dup {
			return nil, fmt.Errorf("clientconfig: %s and %s are both set; keep one", p, l)
		}
		c, ok := ps.Get("ssl.keystore.certificate.chain")
		if !ok {
			return nil, fmt.Errorf("clientconfig: %s needs ssl.keystore.certificate.chain", p)
		}
		keyPEM, chainPEM, src = []byte(p.Value), []byte(c.Value), p.String()
	} else {
		data, s, err := readStore(ps, "ssl.keystore.certificate.chain", "ssl.keystore.location")
		if err != nil {
			return nil, err
		}
		if s == "" {
			for _, k := range []string{"ssl.keystore.password", "ssl.key.password"} {
				if p, ok := ps.Get(k); ok {
					return nil, fmt.Errorf("clientconfig: %s is set without a key store", p)
				}
			}
			return nil, nil
		}
		keyPEM, chainPEM, src = data, data, s
	}
	if err := storeType(ps, "ssl.keystore.type", chainPEM); err != nil {
		return nil, err
	}
	if p, ok := ps.Get("ssl.keystore.password"); ok {
		return nil, fmt.Errorf("clientconfig: %s: a PEM key store has no store password; an encrypted key takes ssl.key.password", p)
	}
	var password *string
	if p, ok := ps.Get("ssl.key.password"); ok {
		password = &p.Value
	}
	cert, err := pemstore.KeyPair(keyPEM, chainPEM, password)
	if err != nil {
		return nil, fmt.Errorf("clientconfig: %s: %w", src, err)
	}
	return &cert, nil
}

// tlsVersions applies ssl.protocol and ssl.enabled.protocols (TLSv1.2, TLSv1.3).
func tlsVersions(ps *Properties, cfg *tls.Config) error {
	versions := map[string]uint16{"TLSV1.2": tls.VersionTLS12, "TLSV1.3": tls.VersionTLS13, "TLS": tls.VersionTLS12}
	if p, ok := ps.Get("ssl.enabled.protocols"); ok {
		lo, hi := uint16(0), uint16(0)
		for _, v := range strings.Split(p.Value, ",") {
			n, ok := versions[strings.ToUpper(strings.TrimSpace(v))]
			if !ok {
				return fmt.Errorf("clientconfig: %s: %q is not allowed; allowed: TLSv1.2, TLSv1.3", p, strings.TrimSpace(v))
			}
			if lo == 0 || n < lo {
				lo = n
			}
			hi = max(hi, n)
		}
		cfg.MinVersion, cfg.MaxVersion = lo, hi
	}
	if p, ok := ps.Get("ssl.protocol"); ok {
		if _, ok := versions[strings.ToUpper(p.Value)]; !ok {
			return fmt.Errorf("clientconfig: %s: %q is not allowed; allowed: TLS, TLSv1.2, TLSv1.3", p, p.Value)
		}
	}
	return nil
}
