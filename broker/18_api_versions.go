package broker

// ApiVersions (key 18), versions 0-4.
//
// Behaviour: answers the advertised table (versions.go). The response header is always v0
// (no tagged fields), as Kafka does, so any client can parse it. A request of a version above
// what is advertised is answered with UNSUPPORTED_VERSION and the table in a v0 body (see
// conn.answerUnsupportedAPIVersions) so the client retries with a version we speak.
// Differences from Kafka: no finalized features or KIP-511 client metrics.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleApiVersions(c *conn, req *request) (kmsg.Response, error) {
	resp := req.msg.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = advertised
	return resp, nil
}
