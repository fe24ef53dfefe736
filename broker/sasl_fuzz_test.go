package broker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzSASLFrames feeds a stream of frames to a connection on a SASL listener through the
// connection's own read, gate and handle path, and fails when anything panics or when a
// request other than ApiVersions, SaslHandshake and SaslAuthenticate is handled before the
// connection authenticated. The broker has PLAIN user alice (password pw) and no SCRAM users.
// Seeds: logins with SaslHandshake v1 and v0, a SCRAM client-first message, a wrong password,
// a request before authentication, and the steps out of order.
func FuzzSASLFrames(f *testing.F) {
	// A started broker: requests that pass the SASL gate are handled for real (a lone broker
	// must have caught up with its controller before it answers them).
	b := startInProcess(f, Config{NodeID: 1}, nil)
	l := &listener{name: "SASL_PLAINTEXT", protocol: protoSASLPlaintext, mechanisms: []string{mechPlain, mechScramSHA256, mechScramSHA512},
		plainUsers: map[string]string{"alice": "pw"}, maxReceive: 4096}
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	frame := func(req kmsg.Request) []byte { return formatter.AppendRequest(nil, req, 1) }
	raw := func(token string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(token))), token...)
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	apiVersions := frame(&kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "f", ClientSoftwareVersion: "1"})
	metadata := frame(kmsg.NewPtrMetadataRequest())
	for _, seed := range [][]byte{
		join(apiVersions, frame(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}),
			frame(&kmsg.SASLAuthenticateRequest{Version: 2, SASLAuthBytes: []byte("\x00alice\x00pw")}), metadata),
		join(frame(&kmsg.SASLHandshakeRequest{Version: 0, Mechanism: "PLAIN"}), raw("\x00alice\x00pw"), metadata),
		join(frame(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "SCRAM-SHA-256"}),
			frame(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("n,,n=alice,r=abcdefgh")})),
		join(frame(&kmsg.SASLHandshakeRequest{Version: 0, Mechanism: "SCRAM-SHA-512"}), raw("n,,n=alice,r=abcdefgh"), raw("c=biws,r=x,p=AAAA")),
		join(frame(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}),
			frame(&kmsg.SASLAuthenticateRequest{Version: 0, SASLAuthBytes: []byte("\x00alice\x00wrong")}), metadata),
		join(metadata),
		join(frame(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00pw")}), metadata),
		join(frame(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "GSSAPI"}), metadata),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := &conn{b: b, log: b.log, listener: l, sasl: newSASLState(b, l), br: bufio.NewReader(bytes.NewReader(stream))}
		defer c.releaseParts()
		out := make(chan outFrame, 64)
		for range 32 {
			req, err := c.readRequest()
			if err != nil {
				return
			}
			authenticated := c.sasl.phase == saslAuthenticated
			key, isRaw := req.key, req.rawSASL
			if req.msg != nil {
				tame(req.msg)
			}
			err = c.serveRequest(req, out)
			c.releaseFrame(req)
			for len(out) > 0 {
				fr := <-out
				releaseParts(fr.parts)
				putBuf(fr.buf)
			}
			if err == nil && !isRaw && !authenticated && key != kmsg.ApiVersions.Int16() &&
				key != kmsg.SASLHandshake.Int16() && key != kmsg.SASLAuthenticate.Int16() {
				t.Fatalf("%s was handled before the connection authenticated", kmsg.NameForKey(key))
			}
			if err != nil {
				return
			}
		}
	})
}
