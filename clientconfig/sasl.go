package clientconfig

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kchaos/kchaos/jaas"
)

// SASL mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
	MechanismAWSMSKIAM   = "AWS_MSK_IAM"
)

// SASL is a client's SASL login: the mechanism and its credentials. Its String and GoString
// name the mechanism and user only; the password and tokens are unexported and never printed.
type SASL struct {
	// Mechanism is sasl.mechanism.
	Mechanism string
	// User is the PLAIN or SCRAM user name; empty for OAUTHBEARER and AWS_MSK_IAM.
	User     string
	password string
	oauth    *oauthSource
}

// String names the mechanism and user. Its receiver is a value, so printing a SASL value
// (%+v of *s) cannot reach the password either.
func (s SASL) String() string {
	if s.User != "" {
		return s.Mechanism + " as " + s.User
	}
	return s.Mechanism
}

// GoString is String, so %#v does not print the password either.
func (s SASL) GoString() string { return s.String() }

// loginModules maps each mechanism to the login module the Java client needs for it.
var loginModules = map[string]string{
	MechanismPlain:       jaas.PlainLoginModule,
	MechanismScramSHA256: jaas.ScramLoginModule,
	MechanismScramSHA512: jaas.ScramLoginModule,
	MechanismOAuthBearer: jaas.OAuthLoginModule,
	MechanismAWSMSKIAM:   jaas.AWSIAMLoginModule,
}

// saslConfig reads sasl.mechanism (the Java client's default is GSSAPI) and sasl.jaas.config.
// driver names the client library, for mechanisms it cannot speak.
func saslConfig(ps *Properties, driver string) (*SASL, error) {
	mech := "GSSAPI"
	mp, hasMech := ps.Get("sasl.mechanism")
	if hasMech {
		mech = strings.ToUpper(mp.Value)
	}
	module, ok := loginModules[mech]
	if !ok {
		return nil, fmt.Errorf("clientconfig: %s: %q is not supported by driver %s; allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, AWS_MSK_IAM", where(ps, "sasl.mechanism"), mech, driver)
	}
	if mech == MechanismAWSMSKIAM && driver != "franz-go" {
		return nil, fmt.Errorf("clientconfig: %s: AWS_MSK_IAM is not supported by driver %s (use driver franz-go)", mp, driver)
	}
	if mech == MechanismOAuthBearer && (driver == "kafka-go" || driver == "confluent") {
		// kafka-go has no OAUTHBEARER mechanism; librdkafka's needs a token refresh callback
		// loop the confluent driver does not run.
		return nil, fmt.Errorf("clientconfig: %s: OAUTHBEARER is not supported by driver %s (use driver franz-go or sarama)", mp, driver)
	}
	jp, ok := ps.Get("sasl.jaas.config")
	if !ok {
		return nil, fmt.Errorf("clientconfig: sasl.mechanism=%s needs sasl.jaas.config (%s required ...;)", mech, module)
	}
	mods, err := jaas.Parse(jp.Value)
	if err != nil {
		return nil, fmt.Errorf("clientconfig: %s: %w", jp, err)
	}
	if len(mods) != 1 {
		return nil, fmt.Errorf("clientconfig: %s: a client takes exactly one login module, got %d", jp, len(mods))
	}
	m := mods[0]
	if m.Class != module {
		return nil, fmt.Errorf("clientconfig: %s: %s does not log in with %s; sasl.mechanism=%s needs %s", jp, m.Class, mech, mech, module)
	}
	s := &SASL{Mechanism: mech}
	switch mech {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		s.User, s.password = m.Options["username"], m.Options["password"]
		if s.User == "" || s.password == "" {
			return nil, fmt.Errorf("clientconfig: %s: %s needs username and password options", jp, m.Class)
		}
	case MechanismOAuthBearer:
		if s.oauth, err = newOAuthSource(ps, jp, m); err != nil {
			return nil, err
		}
	case MechanismAWSMSKIAM:
		for _, opt := range []string{"awsProfileName", "awsRoleArn"} {
			if _, ok := m.Options[opt]; ok {
				return nil, fmt.Errorf("clientconfig: %s: option %s is not supported; give credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN", jp, opt)
			}
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" || os.Getenv("AWS_SECRET_ACCESS_KEY") == "" {
			return nil, fmt.Errorf("clientconfig: %s: AWS_MSK_IAM takes its credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), which are not set", jp)
		}
	}
	return s, nil
}

// oauthSource produces OAUTHBEARER tokens: an unsecured JWT built from the login module's
// unsecuredLoginStringClaim_sub option (Kafka's OAuthBearerUnsecuredLoginCallbackHandler), or
// a token from sasl.oauthbearer.token.endpoint.url by the client-credentials grant with the
// module's clientId, clientSecret and scope options (KIP-768). Tokens are reused until 80% of
// their lifetime has passed, as Kafka's login refresh does.
type oauthSource struct {
	endpoint   string
	clientID   string
	secret     string
	scope      string
	sub        string
	lifetime   time.Duration
	extensions map[string]string

	mu      sync.Mutex // guards token, refresh
	token   string
	refresh time.Time
}

func newOAuthSource(ps *Properties, jp Property, m jaas.LoginModule) (*oauthSource, error) {
	o := &oauthSource{extensions: map[string]string{}, lifetime: time.Hour}
	for k, v := range m.Options {
		if name, ok := strings.CutPrefix(k, "extension_"); ok {
			o.extensions[name] = v
		}
		if name, ok := strings.CutPrefix(k, "unsecuredLoginExtension_"); ok {
			o.extensions[name] = v
		}
	}
	if ep, ok := ps.Get("sasl.oauthbearer.token.endpoint.url"); ok {
		u, err := url.Parse(ep.Value)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("clientconfig: %s: want an http or https URL", ep)
		}
		o.endpoint, o.clientID, o.secret, o.scope = ep.Value, m.Options["clientId"], m.Options["clientSecret"], m.Options["scope"]
		if o.clientID == "" || o.secret == "" {
			return nil, fmt.Errorf("clientconfig: %s: the token endpoint needs clientId and clientSecret options", jp)
		}
		return o, nil
	}
	o.sub = m.Options["unsecuredLoginStringClaim_sub"]
	if o.sub == "" {
		return nil, fmt.Errorf("clientconfig: %s: OAUTHBEARER needs sasl.oauthbearer.token.endpoint.url (with clientId and clientSecret options) or an unsecuredLoginStringClaim_sub option", jp)
	}
	if s, ok := m.Options["unsecuredLoginLifetimeSeconds"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("clientconfig: %s: unsecuredLoginLifetimeSeconds must be a positive integer", jp)
		}
		o.lifetime = time.Duration(n) * time.Second
	}
	return o, nil
}

// Token returns a valid token and the SASL extensions to send with it.
func (o *oauthSource) Token(ctx context.Context) (string, map[string]string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if o.token != "" && now.Before(o.refresh) {
		return o.token, o.extensions, nil
	}
	var tok string
	var life time.Duration
	var err error
	if o.endpoint != "" {
		tok, life, err = o.fetch(ctx)
	} else {
		tok, life = o.unsecured(now), o.lifetime
	}
	if err != nil {
		return "", nil, err
	}
	o.token, o.refresh = tok, now.Add(life*8/10)
	return tok, o.extensions, nil
}

// unsecured builds an unsigned JWT ({"alg":"none"}) for subject sub, valid for lifetime.
func (o *oauthSource) unsecured(now time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"none"}`))
	claims, _ := json.Marshal(map[string]any{"sub": o.sub, "iat": now.Unix(), "exp": now.Add(o.lifetime).Unix()})
	return header + "." + enc.EncodeToString(claims) + "."
}

// fetch asks the token endpoint for a token (RFC 6749 client credentials grant).
func (o *oauthSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if o.scope != "" {
		form.Set("scope", o.scope)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("clientconfig: token endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(o.clientID), url.QueryEscape(o.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("clientconfig: token endpoint: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("clientconfig: token endpoint answered %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", 0, errors.New("clientconfig: token endpoint: no access_token in the answer")
	}
	life := time.Duration(body.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Hour
	}
	return body.AccessToken, life, nil
}
