package broker

// The server side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's
// ScramSaslServer speaks it: no channel binding, an authorization id only when it equals the
// user name, and a client-final nonce that must end with the server-first nonce. The last is
// Kafka's leniency, which librdkafka relies on: it sends its own nonce followed by the whole
// server-first nonce (which already starts with it), so a server that wants the two equal, as
// RFC 5802 says, refuses every librdkafka login.

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/kchaos/kchaos/broker/controller"
)

// scramServer is one SCRAM login against the credentials in the metadata image.
type scramServer struct {
	b    *Broker
	mech int8
	hash func() hash.Hash

	name        string
	cred        *controller.ScramCredential
	gs2Header   string
	clientFirst string // client-first-message-bare
	serverFirst string
	nonce       string
	done        bool
}

func (s *scramServer) user() string { return s.name }

func (s *scramServer) step(in []byte) ([]byte, bool, error) {
	if s.serverFirst == "" {
		out, err := s.first(string(in))
		return []byte(out), false, err
	}
	if s.done {
		return nil, false, errors.New("scram: login already finished")
	}
	out, err := s.final(string(in))
	if err != nil {
		return nil, false, err
	}
	s.done = true
	return []byte(out), true, nil
}

// first reads client-first-message (gs2-header, n=user, r=nonce, extensions) and answers
// server-first-message (r=nonce, s=salt, i=iterations).
func (s *scramServer) first(msg string) (string, error) {
	parts := strings.SplitN(msg, ",", 3)
	if len(parts) != 3 {
		return "", errors.New("scram: malformed client-first-message")
	}
	switch parts[0] {
	case "n", "y":
	default:
		return "", errors.New("scram: channel binding is not supported")
	}
	authz := ""
	if parts[1] != "" {
		a, ok := strings.CutPrefix(parts[1], "a=")
		if !ok {
			return "", errors.New("scram: malformed authorization id")
		}
		authz = a
	}
	s.gs2Header = parts[0] + "," + parts[1] + ","
	s.clientFirst = parts[2]
	attrs := strings.Split(parts[2], ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) == 2 {
		return "", errors.New("scram: client-first-message needs n= and r=")
	}
	name, ok := decodeSASLName(attrs[0][2:])
	if !ok {
		return "", errors.New("scram: malformed user name")
	}
	if authz != "" {
		if a, ok := decodeSASLName(authz); !ok || a != name {
			return "", errors.New("scram: the authorization id differs from the user name")
		}
	}
	cred := s.b.scramCredential(name, s.mech)
	if cred == nil {
		return "", errors.New("scram: unknown user")
	}
	s.name, s.cred = name, cred
	s.nonce = attrs[1][2:] + scramNonce()
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(int(cred.Iterations))
	return s.serverFirst, nil
}

// final reads client-final-message (c=binding, r=nonce, p=proof), checks the proof against
// the stored key and answers server-final-message (v=server signature).
func (s *scramServer) final(msg string) (string, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", errors.New("scram: client-final-message has no proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return "", errors.New("scram: client-final-message needs c= and r=")
	}
	if binding, err := base64.StdEncoding.DecodeString(attrs[0][2:]); err != nil || string(binding) != s.gs2Header {
		return "", errors.New("scram: channel binding does not match the gs2 header")
	}
	if !strings.HasSuffix(attrs[1][2:], s.nonce) {
		return "", errors.New("scram: the nonce does not end with the server's")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil {
		return "", errors.New("scram: malformed proof")
	}
	authMessage := []byte(s.clientFirst + "," + s.serverFirst + "," + withoutProof)
	sig := s.hmac(s.cred.StoredKey, authMessage)
	if len(proof) != len(sig) {
		return "", errors.New("scram: proof of the wrong length")
	}
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = proof[i] ^ sig[i]
	}
	h := s.hash()
	h.Write(clientKey)
	if !hmac.Equal(h.Sum(nil), s.cred.StoredKey) {
		return "", errors.New("scram: invalid proof")
	}
	return "v=" + base64.StdEncoding.EncodeToString(s.hmac(s.cred.ServerKey, authMessage)), nil
}

func (s *scramServer) hmac(key, msg []byte) []byte {
	m := hmac.New(s.hash, key)
	m.Write(msg)
	return m.Sum(nil)
}

// decodeSASLName undoes RFC 5802's escapes of ',' (=2C) and '=' (=3D) in a user name.
func decodeSASLName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, s != ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), b.Len() > 0
}

// scramNonce returns a server nonce of letters and digits, as Kafka's ScramFormatter makes
// them.
func scramNonce() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("broker: crypto/rand: %v", err))
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
