package broker

// Listeners, as Kafka configures them in server.properties (given with --set):
//
//	listeners=PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093
//	listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL   (Kafka's default map)
//	advertised.listeners=SASL_SSL://broker1.example:9093
//	ssl.keystore.type=PEM  ssl.keystore.location=broker.pem (key and chain)  ssl.key.password=...
//	ssl.truststore.type=PEM  ssl.truststore.location=ca.pem  ssl.client.auth=none|requested|required
//	sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
//	listener.name.sasl_ssl.plain.sasl.jaas.config=...PlainLoginModule required user_alice="...";
//	connections.max.reauth.ms=0
//
// Every ssl.* and sasl.* setting and connections.max.reauth.ms may be given per listener as
// listener.name.<name>.<setting>, which wins over the unprefixed one, as in Kafka.
//
// The inter-broker listener (inter.broker.listener.name, default PLAINTEXT) is the one other
// brokers dial for replication and the address the broker registers with the controller; it
// listens on Config.Listen (--listen) unless `listeners` names it with an address. It must be
// PLAINTEXT: links between brokers, and to the controller listener (controller.DialAPI), stay
// plaintext and unauthenticated, so a secured cluster should bind them to loopback or a
// private network. The other listeners serve clients only. Metadata, FindCoordinator and
// DescribeCluster answer each client with the brokers' endpoints of the listener it
// connected on (brokers without that listener are left out), as Kafka does.
//
// Differences from Kafka: stores are PEM only (ssl.keystore.type and ssl.truststore.type
// default to PEM, Kafka's default is JKS); sasl.enabled.mechanisms defaults to PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512 (Kafka's is GSSAPI, which is not implemented); no authorizer:
// every authenticated principal may do everything.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
	"github.com/kchaos/kchaos/pemstore"
)

// Security protocols.
const (
	protoPlaintext     = "PLAINTEXT"
	protoSSL           = "SSL"
	protoSASLPlaintext = "SASL_PLAINTEXT"
	protoSASLSSL       = "SASL_SSL"
)

// securityProps are the listener and security settings understood, with their defaults.
var securityProps = map[string]string{
	"listeners":                             "",
	"advertised.listeners":                  "",
	"listener.security.protocol.map":        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
	"inter.broker.listener.name":            protoPlaintext,
	"ssl.keystore.type":                     "PEM",
	"ssl.keystore.location":                 "",
	"ssl.keystore.key":                      "",
	"ssl.keystore.certificate.chain":        "",
	"ssl.key.password":                      "",
	"ssl.truststore.type":                   "PEM",
	"ssl.truststore.location":               "",
	"ssl.truststore.certificates":           "",
	"ssl.client.auth":                       "none",
	"ssl.enabled.protocols":                 "TLSv1.2,TLSv1.3",
	"ssl.endpoint.identification.algorithm": "https",
	"sasl.enabled.mechanisms":               "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
	"connections.max.reauth.ms":             "0",
	"sasl.server.max.receive.size":          "524288",
}

// perListener are the settings that may be prefixed with listener.name.<name>.
var perListener = []string{"ssl.", "sasl.", "connections.max.reauth.ms"}

// securityProp validates one security setting; ok is false when key is none.
func securityProp(k, v string) (ok bool, err error) {
	key := k
	if rest, found := strings.CutPrefix(k, "listener.name."); found {
		name, setting, found := strings.Cut(rest, ".")
		if !found || name == "" || name != strings.ToLower(name) {
			return true, fmt.Errorf("broker: setting %s: want listener.name.<lowercase listener name>.<setting>", k)
		}
		if mech, found := strings.CutSuffix(setting, ".sasl.jaas.config"); found {
			if mech != "plain" {
				return true, fmt.Errorf("broker: setting %s: only PLAIN users come from a JAAS config (listener.name.%s.plain.sasl.jaas.config); SCRAM users are created with AlterUserScramCredentials, and inter-broker links do not use SASL", k, name)
			}
			return true, nil
		}
		if !slices.ContainsFunc(perListener, func(p string) bool { return strings.HasPrefix(setting, p) }) {
			return true, fmt.Errorf("broker: setting %s: %s cannot be set per listener", k, setting)
		}
		key = setting
	}
	if _, known := securityProps[key]; !known {
		return false, nil
	}
	switch key {
	case "connections.max.reauth.ms", "sasl.server.max.receive.size":
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
			return true, fmt.Errorf("broker: setting %s=%q: want an integer of at least 0", k, v)
		}
	case "ssl.client.auth":
		if v != "none" && v != "requested" && v != "required" {
			return true, fmt.Errorf("broker: setting %s=%q: allowed: none, requested, required", k, v)
		}
	case "ssl.keystore.type", "ssl.truststore.type":
		if !strings.EqualFold(v, "PEM") {
			return true, fmt.Errorf("broker: setting %s=%q: only PEM stores are supported", k, v)
		}
	}
	return true, nil
}

// listener is one client listener.
type listener struct {
	name     string
	protocol string
	// bind is the address to listen on; advertised is what Metadata says, set by start.
	bind       string
	advertised hostPort
	tls        *tls.Config
	// mechanisms are the enabled SASL mechanisms; plainUsers the PLAIN users and passwords.
	mechanisms []string
	plainUsers map[string]string
	// reauth is connections.max.reauth.ms: the longest a SASL session lasts before the
	// client must authenticate again; 0 means forever.
	reauth     time.Duration
	maxReceive int32
	ln         net.Listener
}

func (l *listener) sasl() bool { return l.protocol == protoSASLPlaintext || l.protocol == protoSASLSSL }

// security holds a broker's listeners besides the inter-broker one.
type security struct {
	listeners []*listener
	wg        sync.WaitGroup
}

// newSecurity reads the listener settings of cfg. It sets cfg.Listen (and cfg.AdvertisedAddr
// when unset) from `listeners` and `advertised.listeners` when they name the inter-broker
// listener.
func newSecurity(cfg *Config) (*security, error) {
	prop := func(k string) string {
		if v, ok := cfg.Props[k]; ok {
			return v
		}
		return securityProps[k]
	}
	s := &security{}
	interBroker := prop("inter.broker.listener.name")
	protocols := map[string]string{}
	for _, e := range splitList(prop("listener.security.protocol.map")) {
		name, proto, ok := strings.Cut(e, ":")
		proto = strings.ToUpper(proto)
		if !ok || name == "" || !slices.Contains([]string{protoPlaintext, protoSSL, protoSASLPlaintext, protoSASLSSL}, proto) {
			return nil, fmt.Errorf("broker: listener.security.protocol.map entry %q: want NAME:PROTOCOL, PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL", e)
		}
		protocols[name] = proto
	}
	if p := protocols[interBroker]; p != "" && p != protoPlaintext {
		return nil, fmt.Errorf("broker: inter.broker.listener.name %s is %s; inter-broker and controller links are plaintext only", interBroker, p)
	}
	advertised, err := parseListenerList("advertised.listeners", prop("advertised.listeners"))
	if err != nil {
		return nil, err
	}
	listed, err := parseListenerList("listeners", prop("listeners"))
	if err != nil {
		return nil, err
	}
	for _, e := range listed {
		if e.name == interBroker {
			cfg.Listen = e.addr
			continue
		}
		if e.name == "CONTROLLER" || e.name == protoPlaintext {
			// Registration names the inter-broker listener PLAINTEXT and the Raft one
			// CONTROLLER (62_broker_registration.go).
			return nil, fmt.Errorf("broker: listener %s: this name is reserved for the inter-broker listener (inter.broker.listener.name=%s) and the controller", e.name, interBroker)
		}
		proto, ok := protocols[e.name]
		if !ok {
			return nil, fmt.Errorf("broker: listener %s is not in listener.security.protocol.map", e.name)
		}
		l := &listener{name: e.name, protocol: proto, bind: e.addr}
		if err := l.configure(cfg); err != nil {
			return nil, err
		}
		s.listeners = append(s.listeners, l)
	}
	for _, e := range advertised {
		switch l := s.listener(e.name); {
		case e.name == interBroker:
			if cfg.AdvertisedAddr == "" {
				cfg.AdvertisedAddr = e.addr
			}
		case l == nil:
			return nil, fmt.Errorf("broker: advertised.listeners names %s, which is not in listeners", e.name)
		default:
			host, port, err := splitHostPort(e.addr)
			if err != nil || host == "" || port == 0 {
				return nil, fmt.Errorf("broker: advertised.listeners %s://%s: want a host and a port", e.name, e.addr)
			}
			l.advertised = hostPort{host: host, port: port}
		}
	}
	return s, nil
}

// listener returns the listener called name, or nil.
func (s *security) listener(name string) *listener {
	for _, l := range s.listeners {
		if l.name == name {
			return l
		}
	}
	return nil
}

type listenerEntry struct{ name, addr string }

// parseListenerList parses NAME://HOST:PORT,... (HOST may be empty: every interface).
func parseListenerList(key, v string) ([]listenerEntry, error) {
	var out []listenerEntry
	for _, e := range splitList(v) {
		name, addr, ok := strings.Cut(e, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("broker: %s entry %q: want NAME://HOST:PORT", key, e)
		}
		if _, _, err := splitHostPort(addr); err != nil {
			return nil, fmt.Errorf("broker: %s entry %q: %w", key, e, err)
		}
		if slices.ContainsFunc(out, func(o listenerEntry) bool { return o.name == name }) {
			return nil, fmt.Errorf("broker: %s names listener %s twice", key, name)
		}
		out = append(out, listenerEntry{name, addr})
	}
	return out, nil
}

func splitHostPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: want 0 to 65535", port)
	}
	return host, int32(n), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// configure reads l's TLS and SASL settings.
func (l *listener) configure(cfg *Config) error {
	prefix := "listener.name." + strings.ToLower(l.name) + "."
	prop := func(k string) (string, bool) {
		if v, ok := cfg.Props[prefix+k]; ok {
			return v, true
		}
		v, ok := cfg.Props[k]
		if !ok {
			v = securityProps[k]
		}
		return v, ok
	}
	get := func(k string) string { v, _ := prop(k); return v }
	ms, _ := strconv.ParseInt(get("connections.max.reauth.ms"), 10, 64)
	l.reauth = time.Duration(ms) * time.Millisecond
	n, _ := strconv.ParseInt(get("sasl.server.max.receive.size"), 10, 32)
	l.maxReceive = int32(n)
	if l.protocol == protoSSL || l.protocol == protoSASLSSL {
		t, err := serverTLS(l.name, prop)
		if err != nil {
			return err
		}
		l.tls = t
	}
	if !l.sasl() {
		return nil
	}
	for _, m := range splitList(get("sasl.enabled.mechanisms")) {
		m = strings.ToUpper(m)
		if !slices.Contains([]string{mechPlain, mechScramSHA256, mechScramSHA512}, m) {
			return fmt.Errorf("broker: listener %s: sasl.enabled.mechanisms: %s is not supported; allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", l.name, m)
		}
		l.mechanisms = append(l.mechanisms, m)
	}
	if len(l.mechanisms) == 0 {
		return fmt.Errorf("broker: listener %s: sasl.enabled.mechanisms is empty", l.name)
	}
	l.plainUsers = map[string]string{}
	if jaas, ok := cfg.Props[prefix+"plain.sasl.jaas.config"]; ok {
		users, err := plainJAASUsers(jaas)
		if err != nil {
			return fmt.Errorf("broker: %splain.sasl.jaas.config: %w", prefix, err)
		}
		l.plainUsers = users
	}
	return nil
}

// serverTLS builds a listener's TLS configuration from its PEM key and trust stores.
func serverTLS(name string, prop func(string) (string, bool)) (*tls.Config, error) {
	read := func(inline, location string) ([]byte, error) {
		if v, ok := prop(inline); ok && v != "" {
			return []byte(v), nil
		}
		path, _ := prop(location)
		if path == "" {
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("broker: listener %s: %s: %w", name, location, err)
		}
		return b, nil
	}
	keyPEM, err := read("ssl.keystore.key", "ssl.keystore.location")
	if err != nil {
		return nil, err
	}
	chainPEM := keyPEM
	if v, ok := prop("ssl.keystore.certificate.chain"); ok && v != "" {
		chainPEM = []byte(v)
	}
	if keyPEM == nil {
		return nil, fmt.Errorf("broker: listener %s uses TLS but has no ssl.keystore.location", name)
	}
	var password *string
	if v, ok := prop("ssl.key.password"); ok {
		password = &v
	}
	cert, err := pemstore.KeyPair(keyPEM, chainPEM, password)
	if err != nil {
		return nil, fmt.Errorf("broker: listener %s: key store: %w", name, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	versions := splitList(mustProp(prop, "ssl.enabled.protocols"))
	for _, p := range versions {
		if p != "TLSv1.2" && p != "TLSv1.3" {
			return nil, fmt.Errorf("broker: listener %s: ssl.enabled.protocols: %s is not supported; allowed: TLSv1.2, TLSv1.3", name, p)
		}
	}
	if !slices.Contains(versions, "TLSv1.2") {
		cfg.MinVersion = tls.VersionTLS13
	}
	trustPEM, err := read("ssl.truststore.certificates", "ssl.truststore.location")
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if trustPEM != nil {
		if roots, err = pemstore.TrustStore(trustPEM); err != nil {
			return nil, fmt.Errorf("broker: listener %s: trust store: %w", name, err)
		}
	}
	switch mustProp(prop, "ssl.client.auth") {
	case "required":
		if roots == nil {
			return nil, fmt.Errorf("broker: listener %s: ssl.client.auth=required needs ssl.truststore.location", name)
		}
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, roots
	case "requested":
		cfg.ClientAuth, cfg.ClientCAs = tls.VerifyClientCertIfGiven, roots
	}
	return cfg, nil
}

func mustProp(prop func(string) (string, bool), k string) string { v, _ := prop(k); return v }

// tlsHandshakeTimeout bounds a client's TLS handshake; default 10s.
const tlsHandshakeTimeout = 10 * time.Second

// startListeners opens every listener besides the inter-broker one, advertising the bound
// address unless advertised.listeners names another (a host of "" or 0.0.0.0 advertises the
// machine's host name, as Kafka advertises its canonical host name).
func (b *Broker) startListeners() error {
	if b.sec == nil {
		return nil
	}
	for _, l := range b.sec.listeners {
		ln, err := net.Listen("tcp", l.bind)
		if err != nil {
			b.closeListeners()
			return fmt.Errorf("broker: listen %s://%s: %w", l.name, l.bind, err)
		}
		l.ln = ln
		if l.advertised.host == "" {
			host, port, _ := splitHostPort(ln.Addr().String())
			if h, _, _ := splitHostPort(l.bind); h == "" || net.ParseIP(h).IsUnspecified() {
				if host, err = os.Hostname(); err != nil {
					host = "localhost"
				}
			}
			l.advertised = hostPort{host: host, port: port}
		}
		b.sec.wg.Add(1)
		go b.acceptOn(l)
	}
	return nil
}

// closeListeners stops accepting on every listener besides the inter-broker one and waits
// for their accept loops.
func (b *Broker) closeListeners() {
	if b.sec == nil {
		return
	}
	for _, l := range b.sec.listeners {
		if l.ln != nil {
			l.ln.Close()
		}
	}
	b.sec.wg.Wait()
}

// listenersDesc lists the listeners besides the inter-broker one as NAME://HOST:PORT with
// their bound addresses, for the start-up log line.
func (b *Broker) listenersDesc() string {
	if b.sec == nil {
		return ""
	}
	var out []string
	for _, l := range b.sec.listeners {
		if l.ln != nil {
			out = append(out, l.name+"://"+l.ln.Addr().String())
		}
	}
	return strings.Join(out, ",")
}

// registrationListeners are the endpoints the broker registers besides its inter-broker one.
func (b *Broker) registrationListeners() []controller.Endpoint {
	if b.sec == nil {
		return nil
	}
	var out []controller.Endpoint
	for _, l := range b.sec.listeners {
		out = append(out, controller.Endpoint{Name: l.name, Host: l.advertised.host, Port: l.advertised.port})
	}
	return out
}

func (b *Broker) acceptOn(l *listener) {
	defer b.sec.wg.Done()
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-b.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			b.log.Error("accept", "listener", l.name, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go b.serveListenerConn(nc, l)
	}
}

// serveListenerConn completes a client's TLS handshake, when the listener uses TLS, then
// serves the connection. A client that is not speaking TLS, or does not trust the broker's
// certificate, or whose certificate the broker does not trust, is closed here.
func (b *Broker) serveListenerConn(nc net.Conn, l *listener) {
	if l.tls != nil {
		tc := tls.Server(nc, l.tls)
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			b.metrics.badRequests.WithLabelValues("tls_handshake").Inc()
			b.log.Info("closing connection", "listener", l.name, "remote", nc.RemoteAddr().String(), "reason", fmt.Errorf("TLS handshake: %w", err))
			nc.Close()
			return
		}
		nc = tc
	}
	if !b.adopt(nc) {
		return
	}
	b.serveConnOn(nc, false, l)
}

// listenerEndpoint maps a broker entry of a response to the endpoint of the listener c
// connected on: unchanged on the inter-broker listener, else that broker's endpoint of the
// same name; ok is false for a broker without one.
func (c *conn) listenerEndpoint(id int32, host string, port int32) (string, int32, bool) {
	l := c.listener
	if l == nil || id < 0 {
		return host, port, true
	}
	if id == c.b.cfg.NodeID {
		return l.advertised.host, l.advertised.port, true
	}
	br := c.b.cl.ctl.Image().Brokers[id]
	if br == nil {
		return "", 0, false
	}
	e, ok := br.Endpoint(l.name)
	return e.Host, e.Port, ok
}

// withListenerEndpoints wraps the handler of an API whose answer names brokers' addresses
// (Metadata, FindCoordinator, DescribeCluster) so a client on a listener other than the
// inter-broker one gets the brokers' endpoints of that listener.
func withListenerEndpoints(h func(*conn, *request) (kmsg.Response, error)) func(*conn, *request) (kmsg.Response, error) {
	return func(c *conn, req *request) (kmsg.Response, error) {
		resp, err := h(c, req)
		if c.listener != nil && resp != nil {
			c.rewriteEndpoints(resp)
		}
		return resp, err
	}
}

// onListener rewrites the address of each broker entry to its endpoint of c's listener and
// leaves out the entries of brokers without one; addr gives an entry's id and address fields.
func onListener[B any](c *conn, brokers []B, addr func(*B) (int32, *string, *int32)) []B {
	kept := brokers[:0]
	for i := range brokers {
		id, host, port := addr(&brokers[i])
		h, p, ok := c.listenerEndpoint(id, *host, *port)
		if ok {
			*host, *port = h, p
			kept = append(kept, brokers[i])
		}
	}
	return kept
}

// rewriteEndpoints replaces the addresses in resp with the endpoints of c's listener,
// leaving out brokers without one; a coordinator without one is COORDINATOR_NOT_AVAILABLE.
func (c *conn) rewriteEndpoints(resp kmsg.Response) {
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		r.Brokers = onListener(c, r.Brokers, func(b *kmsg.MetadataResponseBroker) (int32, *string, *int32) { return b.NodeID, &b.Host, &b.Port })
	case *kmsg.DescribeClusterResponse:
		r.Brokers = onListener(c, r.Brokers, func(b *kmsg.DescribeClusterResponseBroker) (int32, *string, *int32) {
			return b.NodeID, &b.Host, &b.Port
		})
	case *kmsg.FindCoordinatorResponse:
		coordinator := func(id *int32, host *string, port *int32, code *int16) {
			if *code != 0 {
				return
			}
			h, p, ok := c.listenerEndpoint(*id, *host, *port)
			if !ok {
				*id, h, p, *code = -1, "", -1, kerr.CoordinatorNotAvailable.Code
			}
			*host, *port = h, p
		}
		coordinator(&r.NodeID, &r.Host, &r.Port, &r.ErrorCode)
		for i := range r.Coordinators {
			co := &r.Coordinators[i]
			coordinator(&co.NodeID, &co.Host, &co.Port, &co.ErrorCode)
		}
	}
}

// ListenerAddr returns the bound address of the client listener called name, or "" when the
// broker has none (the inter-broker listener's is Addr).
func (b *Broker) ListenerAddr(name string) string {
	if b.sec == nil {
		return ""
	}
	if l := b.sec.listener(name); l != nil && l.ln != nil {
		return l.ln.Addr().String()
	}
	return ""
}
