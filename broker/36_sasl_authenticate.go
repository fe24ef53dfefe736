package broker

// SaslAuthenticate (key 36), versions 0-2.
//
// Behaviour: carries one step of the login SaslHandshake v1 started (KIP-152): PLAIN takes one
// step, SCRAM two. A failed login is SASL_AUTHENTICATION_FAILED with a message that does not
// say whether the user or the password was wrong, and the connection is closed after the
// answer. When the login succeeds and connections.max.reauth.ms is set, v1+ answers the session
// lifetime in SessionLifetimeMillis; the client must authenticate again before it ends
// (KIP-368). Before a handshake, or on a listener without SASL, it is ILLEGAL_SASL_STATE (and
// the connection closes on a SASL listener). See sasl.go.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSaslAuthenticate(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	return resp, c.sasl.authenticate(req.version, r.SASLAuthBytes, resp)
}
