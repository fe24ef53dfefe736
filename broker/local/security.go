package local

// Secured local clusters (Config.Security): every broker gets a second listener of the chosen
// protocol beside its plaintext inter-broker one, whose certificate is signed by a CA made for
// the cluster (Go's crypto/x509), and the launcher creates one SCRAM-SHA-512 user through
// AlterUserScramCredentials. The files live under DIR/security: ca.pem (the clients' trust
// store), broker.pem (the brokers' key store: key and chain) and client.properties, the Java
// client configuration to use (bootstrap, protocol, trust store, user and password), readable
// by its owner only. The password is never put on a command line or printed.

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/pemstore"
)

// Security protocols of a secured local cluster's client listener.
const (
	SecuritySSL           = "ssl"
	SecuritySASLPlaintext = "sasl_plaintext"
	SecuritySASLSSL       = "sasl_ssl"
)

// SecurityUser is the SCRAM-SHA-512 user a SASL local cluster is made with.
const SecurityUser = "kchaos"

// Secured describes a secured cluster's client side.
type Secured struct {
	// Protocol is the client listener's security.protocol (SSL, SASL_PLAINTEXT, SASL_SSL).
	Protocol string
	// Dir holds the files; CA is the trust store, KeyStore the brokers' key store.
	Dir, CA, KeyStore string
	// ClientProperties is the client configuration file (mode 0600), with the password.
	ClientProperties string
	// User is the SCRAM user; empty for SSL.
	User string
	// Bootstrap are the brokers' secured listeners.
	Bootstrap []string
	password  string
}

// listenerName is the listener name (and protocol) of a security mode.
func listenerName(security string) (string, error) {
	switch security {
	case SecuritySSL, SecuritySASLPlaintext, SecuritySASLSSL:
		return strings.ToUpper(security), nil
	}
	return "", fmt.Errorf("local: security %q is not allowed; allowed: ssl, sasl_plaintext, sasl_ssl", security)
}

// prepareSecurity makes the CA and key store of a secured cluster and returns the settings
// every broker gets; each broker's listener address is added per node.
func prepareSecurity(cfg *Config) (*Secured, map[string]string, error) {
	name, err := listenerName(cfg.Security)
	if err != nil {
		return nil, nil, err
	}
	s := &Secured{Protocol: name, Dir: filepath.Join(cfg.Dir, "security")}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("local: %w", err)
	}
	props := map[string]string{}
	if name != "SASL_PLAINTEXT" {
		ca, err := pemstore.NewCA("kchaos local cluster CA")
		if err != nil {
			return nil, nil, err
		}
		hosts := []string{cfg.Host, "localhost", "127.0.0.1"}
		ks, err := ca.Issue("kchaos broker", hosts, "")
		if err != nil {
			return nil, nil, err
		}
		s.CA, s.KeyStore = filepath.Join(s.Dir, "ca.pem"), filepath.Join(s.Dir, "broker.pem")
		if err := os.WriteFile(s.CA, ca.CertPEM, 0o644); err != nil {
			return nil, nil, fmt.Errorf("local: %w", err)
		}
		if err := os.WriteFile(s.KeyStore, ks, 0o600); err != nil {
			return nil, nil, fmt.Errorf("local: %w", err)
		}
		props["ssl.keystore.type"] = "PEM"
		props["ssl.keystore.location"] = s.KeyStore
	}
	if strings.HasPrefix(name, "SASL") {
		s.User = SecurityUser
		pw := make([]byte, 18)
		if _, err := rand.Read(pw); err != nil {
			return nil, nil, fmt.Errorf("local: %w", err)
		}
		s.password = base64.RawURLEncoding.EncodeToString(pw)
		props["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
	}
	return s, props, nil
}

// writeClientProperties writes the client configuration once the brokers' addresses are known.
func (s *Secured) writeClientProperties() error {
	var b strings.Builder
	fmt.Fprintf(&b, "# kchaos cluster: client configuration of its %s listeners\n", s.Protocol)
	fmt.Fprintf(&b, "bootstrap.servers=%s\n", strings.Join(s.Bootstrap, ","))
	fmt.Fprintf(&b, "security.protocol=%s\n", s.Protocol)
	if s.CA != "" {
		fmt.Fprintf(&b, "ssl.truststore.type=PEM\nssl.truststore.location=%s\n", propertiesEscape(s.CA))
	}
	if s.User != "" {
		fmt.Fprintf(&b, "sasl.mechanism=SCRAM-SHA-512\n")
		fmt.Fprintf(&b, "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"%s\" password=\"%s\";\n", s.User, s.password)
	}
	s.ClientProperties = filepath.Join(s.Dir, "client.properties")
	if err := os.WriteFile(s.ClientProperties, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return os.Chmod(s.ClientProperties, 0o600)
}

// propertiesEscape escapes a value for a .properties file (backslashes, leading blanks).
func propertiesEscape(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	if strings.HasPrefix(v, " ") {
		v = `\` + v
	}
	return v
}

// CreateScramUser creates or replaces user's SCRAM credential for mechanism (SCRAM-SHA-256
// or SCRAM-SHA-512; 8192 iterations) through AlterUserScramCredentials on the broker at addr,
// as kafka-configs.sh --alter --add-config does. Extra kgo options connect to a secured
// listener.
func CreateScramUser(ctx context.Context, addr, mechanism, user, password string, opts ...kgo.Opt) error {
	mech, h := int8(2), sha512.New
	switch mechanism {
	case "SCRAM-SHA-512":
	case "SCRAM-SHA-256":
		mech, h = 1, sha256.New
	default:
		return fmt.Errorf("local: SCRAM mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
	}
	salt := make([]byte, 24)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	const iterations = 8192
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return fmt.Errorf("local: salt password: %w", err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = user, mech, iterations, salt, salted
	req.Upsertions = append(req.Upsertions, up)
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := req.RequestWith(rctx, cl)
		cancel()
		if err == nil && len(resp.Results) == 1 {
			res := resp.Results[0]
			kerrv := kerr.ErrorForCode(res.ErrorCode)
			if kerrv == nil {
				return nil
			}
			if !kerr.IsRetriable(kerrv) && kerrv != kerr.NotController {
				msg := ""
				if res.ErrorMessage != nil {
					msg = ": " + *res.ErrorMessage
				}
				return fmt.Errorf("local: create SCRAM user %s: %w%s", user, kerrv, msg)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local: create SCRAM user %s: %w (last error: %v)", user, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// secureListeners sets each node's secured listener on a port chosen now, so restarts keep
// it, and records the bootstrap list.
func (s *Secured) secureListeners(ncs []NodeConfig, host string) error {
	ports, err := freePorts(host, len(ncs))
	if err != nil {
		return err
	}
	s.Bootstrap = nil
	for i := range ncs {
		addr := net.JoinHostPort(host, strconv.Itoa(ports[i]))
		props := make(map[string]string, len(ncs[i].Props)+1)
		for k, v := range ncs[i].Props {
			props[k] = v
		}
		props["listeners"] = s.Protocol + "://" + addr
		ncs[i].Props = props
		s.Bootstrap = append(s.Bootstrap, addr)
	}
	return nil
}

// finishSecurity creates the SCRAM user and writes the client configuration of a secured
// cluster that is ready.
func (c *Cluster) finishSecurity(ctx context.Context) error {
	s := c.Secured
	if s.User != "" {
		if err := CreateScramUser(ctx, c.Nodes[0].Addr(), "SCRAM-SHA-512", s.User, s.password); err != nil {
			return err
		}
		for _, n := range c.Nodes {
			if err := waitScramUser(ctx, n.Addr(), s.User); err != nil {
				return err
			}
		}
	}
	return s.writeClientProperties()
}

// waitScramUser waits until the broker at addr has user's SCRAM credentials in its metadata
// image (DescribeUserScramCredentials), so a login there succeeds.
func waitScramUser(ctx context.Context, addr, user string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
	u.Name = user
	req.Users = append(req.Users, u)
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Results) == 1 && resp.Results[0].ErrorCode == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local: broker %s does not know SCRAM user %s: %w", addr, user, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
