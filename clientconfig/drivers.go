package clientconfig

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"
)

// FranzOpts returns the kgo options that connect as c says: TLS and SASL. Seed brokers are
// the caller's. A nil c is a plaintext connection (no options).
func (c *Config) FranzOpts() []kgo.Opt {
	if c == nil {
		return nil
	}
	var opts []kgo.Opt
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case MechanismPlain:
			opts = append(opts, kgo.SASL(plain.Auth{User: s.User, Pass: s.password}.AsMechanism()))
		case MechanismScramSHA256:
			opts = append(opts, kgo.SASL(scram.Auth{User: s.User, Pass: s.password}.AsSha256Mechanism()))
		case MechanismScramSHA512:
			opts = append(opts, kgo.SASL(scram.Auth{User: s.User, Pass: s.password}.AsSha512Mechanism()))
		case MechanismOAuthBearer:
			src := s.oauth
			opts = append(opts, kgo.SASL(oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
				tok, ext, err := src.Token(ctx)
				return oauth.Auth{Token: tok, Extensions: ext}, err
			})))
		case MechanismAWSMSKIAM:
			opts = append(opts, kgo.SASL(aws.ManagedStreamingIAM(func(context.Context) (aws.Auth, error) {
				return aws.Auth{AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"), SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
					SessionToken: os.Getenv("AWS_SESSION_TOKEN")}, nil
			})))
		}
	}
	return opts
}

// ApplySarama sets cfg's TLS and SASL as c says. A nil c leaves cfg plaintext. It fails for
// what Sarama cannot do (Resolve with driver sarama has refused those already).
func (c *Config) ApplySarama(cfg *sarama.Config) error {
	if c == nil {
		return nil
	}
	if c.TLS != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = c.TLS.Clone()
	}
	s := c.SASL
	if s == nil {
		return nil
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.User, cfg.Net.SASL.Password = s.User, s.password
	switch s.Mechanism {
	case MechanismPlain:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case MechanismScramSHA256:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xscram.SHA256} }
	case MechanismScramSHA512:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xscram.SHA512} }
	case MechanismOAuthBearer:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		cfg.Net.SASL.TokenProvider = saramaToken{s.oauth}
	default:
		return fmt.Errorf("clientconfig: sasl.mechanism=%s is not supported by driver sarama", s.Mechanism)
	}
	return nil
}

// saramaSCRAM is Sarama's SCRAMClient on xdg-go/scram's client conversation.
type saramaSCRAM struct {
	hash xscram.HashGeneratorFcn
	conv *xscram.ClientConversation
}

var _ sarama.SCRAMClient = (*saramaSCRAM)(nil)

func (s *saramaSCRAM) Begin(user, password, authzID string) error {
	cl, err := s.hash.NewClient(user, password, authzID)
	if err != nil {
		return fmt.Errorf("clientconfig: scram: %w", err)
	}
	s.conv = cl.NewConversation()
	return nil
}

func (s *saramaSCRAM) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *saramaSCRAM) Done() bool                            { return s.conv.Done() }

// saramaToken is Sarama's AccessTokenProvider on an oauthSource.
type saramaToken struct{ src *oauthSource }

func (t saramaToken) Token() (*sarama.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tok, ext, err := t.src.Token(ctx)
	if err != nil {
		return nil, err
	}
	return &sarama.AccessToken{Token: tok, Extensions: ext}, nil
}
