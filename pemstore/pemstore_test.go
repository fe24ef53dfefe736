package pemstore

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
)

func TestIssuedStoresReadBack(t *testing.T) {
	ca, err := NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := TrustStore(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "key-Pass"} {
		ks, err := ca.Issue("broker", []string{"127.0.0.1", "localhost"}, pw)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ks, []byte(pw)) && pw != "" {
			t.Fatal("the key store contains its password")
		}
		var password *string
		if pw != "" {
			password = &pw
			if _, err := KeyPair(ks, ks, nil); !errors.Is(err, ErrKeyEncrypted) {
				t.Fatalf("encrypted key without a password: %v", err)
			}
			wrong := "nope"
			if _, err := KeyPair(ks, ks, &wrong); err == nil || strings.Contains(err.Error(), pw) {
				t.Fatalf("wrong password: %v", err)
			}
		} else {
			bogus := "x"
			if _, err := KeyPair(ks, ks, &bogus); !errors.Is(err, ErrKeyNotEncrypted) {
				t.Fatalf("password for a plain key: %v", err)
			}
		}
		cert, err := KeyPair(ks, ks, password)
		if err != nil {
			t.Fatal(err)
		}
		if len(cert.Certificate) != 2 || cert.Leaf.Subject.CommonName != "broker" {
			t.Fatalf("chain of %d, leaf %s", len(cert.Certificate), cert.Leaf.Subject.CommonName)
		}
		if _, err := cert.Leaf.Verify(x509Opts(pool, "127.0.0.1")); err != nil {
			t.Fatalf("leaf does not verify against the CA: %v", err)
		}
	}
	other, _ := ca.Issue("other", nil, "")
	mine, _ := ca.Issue("mine", nil, "")
	if _, err := KeyPair(other, mine, nil); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("mismatched key: %v", err)
	}
	if _, err := TrustStore([]byte("not PEM")); err == nil {
		t.Fatal("a trust store without certificates was accepted")
	}
}

func x509Opts(pool *x509.CertPool, host string) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: pool, DNSName: host}
}
