// Package pemstore reads Kafka's PEM key and trust stores (ssl.keystore.type=PEM,
// ssl.truststore.type=PEM, KIP-651) for both sides of a connection: package clientconfig for
// the clients, the reference broker for its listeners. A key store is one PEM text holding a
// private key — PKCS#8, encrypted PKCS#8 (with ssl.key.password), PKCS#1 or SEC 1 — and its
// certificate chain, leaf first; a trust store is one or more certificates. Errors never
// contain key material or passwords.
package pemstore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/youmark/pkcs8"
)

// ErrKeyEncrypted is returned for an encrypted private key read without a password.
var ErrKeyEncrypted = errors.New("pemstore: the private key is encrypted; a key password (ssl.key.password) is required")

// ErrKeyNotEncrypted is returned for a password given with a key that is not encrypted.
var ErrKeyNotEncrypted = errors.New("pemstore: a key password is set, but the private key is not encrypted")

// TrustStore returns a pool of every CERTIFICATE block in data; at least one is required.
func TrustStore(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pemstore: certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("pemstore: no PEM CERTIFICATE block")
	}
	return pool, nil
}

// KeyPair reads a key store: the private key from keyPEM (decrypted with password when it is
// an encrypted PKCS#8 key; password nil means none was given) and the certificate chain from
// chainPEM (often the same text). The key must belong to the first certificate.
func KeyPair(keyPEM, chainPEM []byte, password *string) (tls.Certificate, error) {
	var cert tls.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			cert.Certificate = append(cert.Certificate, b.Bytes)
		}
	}
	if len(cert.Certificate) == 0 {
		return cert, errors.New("pemstore: no PEM CERTIFICATE block in the key store")
	}
	key, err := privateKey(keyPEM, password)
	if err != nil {
		return cert, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return cert, fmt.Errorf("pemstore: certificate: %w", err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return cert, errors.New("pemstore: the private key does not belong to the first certificate")
	}
	cert.PrivateKey, cert.Leaf = key, leaf
	return cert, nil
}

// privateKey decodes the first private key in data.
func privateKey(data []byte, password *string) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		var k any
		var err error
		switch b.Type {
		case "ENCRYPTED PRIVATE KEY":
			if password == nil {
				return nil, ErrKeyEncrypted
			}
			if k, err = pkcs8.ParsePKCS8PrivateKey(b.Bytes, []byte(*password)); err != nil {
				return nil, fmt.Errorf("pemstore: decrypting the private key failed (wrong key password?): %w", err)
			}
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pemstore: private key: %w", err)
		}
		if password != nil && b.Type != "ENCRYPTED PRIVATE KEY" {
			return nil, ErrKeyNotEncrypted
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("pemstore: private key of type %T is not supported", k)
	}
	return nil, errors.New("pemstore: no PEM private key in the key store")
}

// EncryptKey returns key as an encrypted PKCS#8 PEM block (PBES2, PBKDF2 and AES-256-CBC),
// the form ssl.key.password decrypts; for generated key stores and tests.
func EncryptKey(key crypto.Signer, password string) ([]byte, error) {
	der, err := pkcs8.MarshalPrivateKey(key, []byte(password), nil)
	if err != nil {
		return nil, fmt.Errorf("pemstore: encrypt key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}), nil
}
