package broker

// SaslHandshake (key 17), versions 0-1.
//
// Behaviour: on a SASL_PLAINTEXT or SASL_SSL listener, names the mechanism of the login that
// follows (KIP-43): with v1 its tokens come in SaslAuthenticate requests, with v0 as bare
// length-prefixed frames. The answer lists the listener's sasl.enabled.mechanisms; a mechanism
// not among them is UNSUPPORTED_SASL_MECHANISM and the connection is closed after the answer.
// On an authenticated connection a v1 handshake for the same mechanism starts a
// re-authentication (KIP-368); another mechanism or v0 is ILLEGAL_SASL_STATE and closes the
// connection. On other listeners it is ILLEGAL_SASL_STATE and the connection stays open, as in
// Kafka. See sasl.go.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSaslHandshake(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if c.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	return resp, c.sasl.handshake(req.version, r.Mechanism, resp)
}
