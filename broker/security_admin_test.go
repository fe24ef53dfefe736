package broker_test

import (
	"crypto/sha512"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMetadataAdvertisesTheClientsListener checks that Metadata, FindCoordinator and
// DescribeCluster answer with the address of the listener the client connected on.
func TestMetadataAdvertisesTheClientsListener(t *testing.T) {
	sb := startSecureBroker(t, nil)
	for _, name := range []string{"", "SSL", "SASL_SSL", "SASL_PLAINTEXT"} {
		t.Run("listener="+name, func(t *testing.T) {
			want := sb.b.Addr()
			cl := newClient(t, want)
			if name != "" {
				want = sb.b.ListenerAddr(name)
				mech, user, pw := "SCRAM-SHA-512", "bob", bobPassword
				if name == "SSL" {
					mech = ""
				}
				cl = franzClient(t, sb.props(name, mech, user, pw))
			}
			md := request[*kmsg.MetadataResponse](t, cl, kmsg.NewPtrMetadataRequest())
			if len(md.Brokers) != 1 || hostPort(md.Brokers[0].Host, md.Brokers[0].Port) != want {
				t.Fatalf("Metadata brokers %+v, want %s", md.Brokers, want)
			}
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.CoordinatorKey = "g"
			var co *kmsg.FindCoordinatorResponse
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if co = request[*kmsg.FindCoordinatorResponse](t, cl, fc); co.ErrorCode == 0 {
					break
				}
			}
			if co.ErrorCode != 0 || hostPort(co.Host, co.Port) != want {
				t.Fatalf("FindCoordinator %s (code %d), want %s", hostPort(co.Host, co.Port), co.ErrorCode, want)
			}
			dc := request[*kmsg.DescribeClusterResponse](t, cl, kmsg.NewPtrDescribeClusterRequest())
			if len(dc.Brokers) != 1 || hostPort(dc.Brokers[0].Host, dc.Brokers[0].Port) != want {
				t.Fatalf("DescribeCluster brokers %+v, want %s", dc.Brokers, want)
			}
		})
	}
}

func hostPort(host string, port int32) string { return net.JoinHostPort(host, strconv.Itoa(int(port))) }

// TestScramCredentialsAdmin checks AlterUserScramCredentials and DescribeUserScramCredentials
// (KIP-554): validation per user, deletion, and that a deleted user can no longer log in.
func TestScramCredentialsAdmin(t *testing.T) {
	sb := startSecureBroker(t, nil)
	admin := newClient(t, sb.b.Addr())
	up := func(name string, mech int8, iterations int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt = name, mech, iterations, []byte("salt-salt")
		u.SaltedPassword = make([]byte, sha512.Size)
		return u
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		up("few", 2, 1000), up("many", 2, 20000), up("badmech", 9, 4096), up("twice", 2, 4096), up("twice", 2, 4096), up("", 1, 4096), up("ok", 1, 4096),
	}
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "ghost", 1
	req.Deletions = append(req.Deletions, del)
	resp := request[*kmsg.AlterUserSCRAMCredentialsResponse](t, admin, req)
	want := map[string]int16{
		"few": kerr.UnacceptableCredential.Code, "many": kerr.UnacceptableCredential.Code, "badmech": kerr.UnsupportedSaslMechanism.Code,
		"twice": kerr.DuplicateResource.Code, "": kerr.UnacceptableCredential.Code, "ok": 0, "ghost": kerr.ResourceNotFound.Code,
	}
	if len(resp.Results) != len(want) {
		t.Fatalf("%d results, want one per user (%d): %+v", len(resp.Results), len(want), resp.Results)
	}
	for _, r := range resp.Results {
		if r.ErrorCode != want[r.User] {
			t.Errorf("user %q: %v (%s), want %v", r.User, kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage), kerr.ErrorForCode(want[r.User]))
		}
	}
	describe := func(names ...string) *kmsg.DescribeUserSCRAMCredentialsResponse {
		d := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
		for _, n := range names {
			u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
			u.Name = n
			d.Users = append(d.Users, u)
		}
		if names == nil {
			d.Users = nil
		}
		return request[*kmsg.DescribeUserSCRAMCredentialsResponse](t, admin, d)
	}
	all := describe()
	got := map[string]int{}
	for _, r := range all.Results {
		got[r.User] = len(r.CredentialInfos)
	}
	if len(got) != 2 || got["bob"] != 2 || got["ok"] != 1 {
		t.Fatalf("describe all: %v, want bob with 2 mechanisms and ok with 1", got)
	}
	some := describe("bob", "nobody", "ok", "ok")
	codes := map[string]int16{}
	for _, r := range some.Results {
		codes[r.User] = r.ErrorCode
	}
	if codes["bob"] != 0 || codes["nobody"] != kerr.ResourceNotFound.Code || codes["ok"] != kerr.DuplicateResource.Code {
		t.Fatalf("describe named: %v", codes)
	}
	for _, r := range some.Results {
		if r.User == "bob" && (len(r.CredentialInfos) != 2 || r.CredentialInfos[0].Iterations != 8192) {
			t.Fatalf("bob's credentials %+v, want SCRAM-SHA-256 and -512 with 8192 iterations", r.CredentialInfos)
		}
	}
	// Deleting bob's SCRAM-SHA-512 credential refuses his next SCRAM-SHA-512 login.
	del.Name, del.Mechanism = "bob", 2
	d := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	d.Deletions = append(d.Deletions, del)
	if r := request[*kmsg.AlterUserSCRAMCredentialsResponse](t, admin, d); r.Results[0].ErrorCode != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(r.Results[0].ErrorCode))
	}
	cl := franzClient(t, sb.props("SASL_SSL", "SCRAM-SHA-512", "bob", bobPassword), quickRetries()...)
	if err := cl.Ping(ctx(t, 10*time.Second)); err == nil {
		t.Fatal("bob logged in with a deleted credential")
	}
	if err := franzClient(t, sb.props("SASL_SSL", "SCRAM-SHA-256", "bob", bobPassword)).Ping(ctx(t, 10*time.Second)); err != nil {
		t.Fatalf("bob's SCRAM-SHA-256 login after deleting SCRAM-SHA-512: %v", err)
	}
}

// TestReauthentication sets connections.max.reauth.ms: franz-go authenticates again in place
// before its session ends and keeps producing; a raw client that does not is closed at its
// first request after the session ended.
func TestReauthentication(t *testing.T) {
	sb := startSecureBroker(t, map[string]string{"connections.max.reauth.ms": "1500"})
	cl := franzClient(t, sb.props("SASL_SSL", "SCRAM-SHA-256", "bob", bobPassword))
	createTopic(t, newClient(t, sb.b.Addr()), "reauth", 1, nil)
	start := time.Now()
	n := 0
	for time.Since(start) < 4*time.Second {
		if err := cl.ProduceSync(ctx(t, 10*time.Second), &kgo.Record{Topic: "reauth", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce %d, %s after the first login: %v", n, time.Since(start), err)
		}
		n++
		time.Sleep(50 * time.Millisecond)
	}
	c := dialTLS(t, sb)
	c.roundTrip(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"})
	auth := c.roundTrip(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00" + alicePassword)}).(*kmsg.SASLAuthenticateResponse)
	if auth.ErrorCode != 0 || auth.SessionLifetimeMillis != 1500 {
		t.Fatalf("authenticate: code %d, session lifetime %dms, want 0 and 1500", auth.ErrorCode, auth.SessionLifetimeMillis)
	}
	c.roundTrip(kmsg.NewPtrMetadataRequest())
	time.Sleep(1600 * time.Millisecond)
	c.write(c.frame(kmsg.NewPtrMetadataRequest()))
	c.expectClosed("Metadata after the session expired")
}

func quickRetries() []kgo.Opt {
	return []kgo.Opt{kgo.RetryTimeout(3 * time.Second), kgo.RequestRetries(1)}
}

// TestMutualTLS requires client certificates on the SSL listener (ssl.client.auth=required):
// a client with a key store signed by the CA gets in, one without is refused.
func TestMutualTLS(t *testing.T) {
	sb := startSecureBroker(t, map[string]string{
		"listener.name.ssl.ssl.client.auth":         "required",
		"listener.name.ssl.ssl.truststore.location": "{ca}",
	})
	quick := quickRetries()
	if err := franzClient(t, sb.props("SSL", "", "", ""), quick...).Ping(ctx(t, 10*time.Second)); err == nil {
		t.Fatal("a client without a certificate got in")
	}
	ks, err := sb.caSelf.Issue("client", nil, "client-Key-Pass")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "client.pem")
	writeFile(t, path, ks)
	ps := sb.props("SSL", "", "", "")
	ps.Set("ssl.keystore.type", "PEM", "test")
	ps.Set("ssl.keystore.location", path, "test")
	ps.Set("ssl.key.password", "client-Key-Pass", "test")
	if err := produceConsume(t, franzClient(t, ps), "mtls", 5); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	// The SASL_SSL listener does not ask for certificates.
	if err := franzClient(t, sb.props("SASL_SSL", "PLAIN", "alice", alicePassword)).Ping(ctx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}
