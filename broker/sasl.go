package broker

// Per-connection SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners, as Kafka does
// it: SaslHandshake names the mechanism (KIP-43); with handshake v1 the tokens travel in
// SaslAuthenticate requests (KIP-152), with v0 as bare length-prefixed frames. Until the
// login succeeds the connection may send only ApiVersions and SaslHandshake, then only the
// next SASL step: any other request closes it, so nothing half-authenticated reaches a
// handler, and frames are limited to sasl.server.max.receive.size. A failed login is
// answered SASL_AUTHENTICATION_FAILED (v1) and the connection closed. With
// connections.max.reauth.ms set, SaslAuthenticate v1+ tells the client its session lifetime;
// the client authenticates again in place on the same connection (KIP-368: same mechanism,
// same principal), and a connection whose session expired is closed at its next request
// other than SaslHandshake.
//
// PLAIN checks the listener's JAAS users (user_<name>="<password>"); SCRAM-SHA-256/512
// (scram.go) checks the credentials the controller keeps in the metadata image
// (AlterUserScramCredentials).

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
	"github.com/kchaos/kchaos/jaas"
)

func init() {
	// The flexible versions of the security APIs, for checkFlexible (flexguard.go).
	flexSchemas[kmsg.SASLAuthenticate] = []field{f(fBytes)}
	flexSchemas[kmsg.DescribeUserSCRAMCredentials] = []field{farr(f(fString))}
	flexSchemas[kmsg.AlterUserSCRAMCredentials] = []field{
		farr(f(fString), f(fInt8)),
		farr(f(fString), f(fInt8), f(fInt32), f(fBytes), f(fBytes)),
	}
}

// SASL mechanisms the broker serves.
const (
	mechPlain       = "PLAIN"
	mechScramSHA256 = "SCRAM-SHA-256"
	mechScramSHA512 = "SCRAM-SHA-512"
)

// errCloseAfterResponse makes the connection send the handler's response, then close.
var errCloseAfterResponse = errors.New("broker: close after the response")

type saslPhase int

const (
	saslExpectHandshake    saslPhase = iota // ApiVersions or SaslHandshake
	saslExpectAuthenticate                  // after handshake v1: SaslAuthenticate
	saslExpectToken                         // after handshake v0: a bare token frame
	saslAuthenticated
)

// saslState is one connection's authentication.
type saslState struct {
	l         *listener
	b         *Broker
	phase     saslPhase
	reauth    bool // a re-authentication is under way
	mechanism string
	server    saslServer
	// user is the authenticated principal; expires ends its session (zero: never).
	user    string
	expires time.Time
}

// saslServer is one mechanism's server side of one login.
type saslServer interface {
	// step takes the client's next token and returns the answer; done once the login
	// succeeded. An error means the login failed.
	step(in []byte) (out []byte, done bool, err error)
	// user is the principal, once done.
	user() string
}

func newSASLState(b *Broker, l *listener) *saslState {
	if l == nil || !l.sasl() {
		return nil
	}
	return &saslState{l: l, b: b}
}

// rawNext reports whether the next frame is a bare token (after handshake v0).
func (s *saslState) rawNext() bool { return s != nil && s.phase == saslExpectToken }

// maxFrame bounds the frames of a connection that has not authenticated.
func (s *saslState) maxFrame(max int32) int32 {
	if s == nil || s.phase == saslAuthenticated {
		return max
	}
	return min(max, s.l.maxReceive)
}

// admit reports whether a request with key may be handled now; an error closes the
// connection.
func (s *saslState) admit(key int16) error {
	if s == nil {
		return nil
	}
	switch s.phase {
	case saslAuthenticated:
		if !s.expires.IsZero() && time.Now().After(s.expires) && key != kmsg.SASLHandshake.Int16() {
			return fmt.Errorf("SASL session of %s expired at %s (connections.max.reauth.ms); the client did not authenticate again", s.user, s.expires.Format(time.RFC3339))
		}
		return nil
	case saslExpectHandshake:
		if key == kmsg.ApiVersions.Int16() || key == kmsg.SASLHandshake.Int16() {
			return nil
		}
	case saslExpectAuthenticate:
		if key == kmsg.SASLAuthenticate.Int16() {
			return nil
		}
	}
	return fmt.Errorf("unexpected %s request during SASL authentication", kmsg.NameForKey(key))
}

// handshake handles SaslHandshake: the mechanism must be enabled on the listener (else
// UNSUPPORTED_SASL_MECHANISM with the enabled ones, and the connection closes); on an
// authenticated connection it starts a re-authentication (v1 and the same mechanism only,
// else ILLEGAL_SASL_STATE and close).
func (s *saslState) handshake(version int16, mech string, resp *kmsg.SASLHandshakeResponse) error {
	resp.SupportedMechanisms = s.l.mechanisms
	if s.phase == saslAuthenticated {
		if version == 0 || mech != s.mechanism {
			resp.ErrorCode = kerr.IllegalSaslState.Code
			return errCloseAfterResponse
		}
		s.reauth = true
	} else if s.phase != saslExpectHandshake {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return errCloseAfterResponse
	}
	srv := s.newServer(mech)
	if srv == nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return errCloseAfterResponse
	}
	s.mechanism, s.server = mech, srv
	s.phase = saslExpectAuthenticate
	if version == 0 {
		s.phase = saslExpectToken
	}
	return nil
}

// newServer starts a login with mech, or returns nil when the listener does not enable it.
func (s *saslState) newServer(mech string) saslServer {
	enabled := false
	for _, m := range s.l.mechanisms {
		enabled = enabled || m == mech
	}
	if !enabled {
		return nil
	}
	switch mech {
	case mechPlain:
		return &plainServer{users: s.l.plainUsers}
	case mechScramSHA256:
		return &scramServer{b: s.b, mech: controller.ScramSHA256, hash: sha256.New}
	case mechScramSHA512:
		return &scramServer{b: s.b, mech: controller.ScramSHA512, hash: sha512.New}
	}
	return nil
}

// authFailed is the message of SASL_AUTHENTICATION_FAILED; like Kafka's it does not say
// whether the user or the password was wrong.
func authFailed(mech string) string {
	return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
}

// authenticate runs one SASL step for SaslAuthenticate (v1+: with the session lifetime when
// connections.max.reauth.ms is set).
func (s *saslState) authenticate(version int16, token []byte, resp *kmsg.SASLAuthenticateResponse) error {
	if s.phase != saslExpectAuthenticate {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate before SaslHandshake"
		resp.ErrorMessage = &msg
		return errCloseAfterResponse
	}
	out, err := s.step(token)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		return errCloseAfterResponse
	}
	resp.SASLAuthBytes = out
	if s.phase == saslAuthenticated && s.l.reauth > 0 && version >= 1 {
		resp.SessionLifetimeMillis = s.l.reauth.Milliseconds()
	}
	return nil
}

// step feeds one token to the login and moves to saslAuthenticated when it succeeded.
func (s *saslState) step(token []byte) ([]byte, error) {
	out, done, err := s.server.step(token)
	if err != nil {
		s.b.metrics.badRequests.WithLabelValues("sasl_authentication").Inc()
		// The reason stays in the broker's log: the client learns only that it failed.
		s.b.log.Info("SASL authentication failed", "listener", s.l.name, "mechanism", s.mechanism, "reason", err)
		return nil, errors.New(authFailed(s.mechanism))
	}
	if !done {
		return out, nil
	}
	user := s.server.user()
	if s.reauth && user != s.user {
		s.b.metrics.badRequests.WithLabelValues("sasl_authentication").Inc()
		return nil, errors.New("Authentication failed: cannot change principals during re-authentication")
	}
	s.user, s.server, s.reauth, s.phase = user, nil, false, saslAuthenticated
	s.expires = time.Time{}
	if s.l.reauth > 0 {
		s.expires = time.Now().Add(s.l.reauth)
	}
	return out, nil
}

// readRawSASL reads a bare token frame (after SaslHandshake v0).
func (c *conn) readRawSASL() (*request, error) {
	var sizeBuf [4]byte
	if _, err := io.ReadFull(c.br, sizeBuf[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if size < 0 || size > c.sasl.l.maxReceive {
		c.b.metrics.badRequests.WithLabelValues("frame_size").Inc()
		return nil, fmt.Errorf("SASL token of %d bytes is outside [0, sasl.server.max.receive.size=%d]", size, c.sasl.l.maxReceive)
	}
	frame := getBuf(int(size))
	if _, err := io.ReadFull(c.br, *frame); err != nil {
		putBuf(frame)
		return nil, err
	}
	return &request{rawSASL: true, frame: frame, start: time.Now()}, nil
}

// serveRawSASL answers a bare token with a bare token; a failed login closes the connection
// without an answer, as Kafka does for handshake v0 clients.
func (c *conn) serveRawSASL(req *request, out chan<- outFrame) error {
	resp, err := c.sasl.step(*req.frame)
	if err != nil {
		return err
	}
	buf := getBuf(0)
	*buf = append(append((*buf)[:0], 0, 0, 0, 0), resp...)
	out <- outFrame{buf: buf}
	return nil
}

// plainServer is SASL/PLAIN (RFC 4616) against the listener's JAAS users.
type plainServer struct {
	users map[string]string
	name  string
}

func (p *plainServer) step(in []byte) ([]byte, bool, error) {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return nil, false, errors.New("invalid SASL/PLAIN message: expected 3 tokens")
	}
	authz, user, pass := string(parts[0]), string(parts[1]), parts[2]
	if user == "" || (authz != "" && authz != user) {
		return nil, false, errors.New("invalid SASL/PLAIN identity")
	}
	want, ok := p.users[user]
	if !ok {
		want = "\x00never matches" // compare anyway, so timing does not tell whether the user exists
	}
	if subtle.ConstantTimeCompare([]byte(want), pass) != 1 || !ok {
		return nil, false, errors.New("invalid username or password")
	}
	p.name = user
	return nil, true, nil
}

func (p *plainServer) user() string { return p.name }

// scramCredential returns user's credential for mech from the metadata image, or nil.
func (b *Broker) scramCredential(user string, mech int8) *controller.ScramCredential {
	return b.cl.ctl.Image().Scram[user][mech]
}

// plainJAASUsers reads the users of a broker's PlainLoginModule configuration
// (user_<name>="<password>" options).
func plainJAASUsers(config string) (map[string]string, error) {
	mods, err := jaas.Parse(config)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for _, m := range mods {
		if m.Class != jaas.PlainLoginModule {
			return nil, fmt.Errorf("login module %s is not %s", m.Class, jaas.PlainLoginModule)
		}
		for k, v := range m.Options {
			if name, ok := strings.CutPrefix(k, "user_"); ok && name != "" {
				users[name] = v
			}
		}
	}
	return users, nil
}
