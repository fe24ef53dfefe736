package local_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/clientconfig"
)

// TestSecuredCluster starts two brokers with SASL_SSL listeners and uses the client
// configuration file the launcher wrote, as a user of `kchaos cluster up --security sasl_ssl`
// would: Metadata through either broker lists both brokers at their SASL_SSL addresses, and
// records go through.
func TestSecuredCluster(t *testing.T) {
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := local.Start(ctx, local.Config{Brokers: 2, Dir: t.TempDir(), Binary: bin, Security: local.SecuritySASLSSL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	sec := c.Secured
	if sec == nil || len(sec.Bootstrap) != 2 {
		t.Fatalf("secured: %+v", sec)
	}
	st, err := os.Stat(sec.ClientProperties)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", sec.ClientProperties, st.Mode().Perm())
	}
	ps, err := clientconfig.LoadProperties(sec.ClientProperties)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientconfig.Resolve(ps, "franz-go")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range sec.Bootstrap {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, cfg.FranzOpts()...)...)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		cl.Close()
		if err != nil {
			t.Fatalf("metadata through %s: %v", addr, err)
		}
		var got []string
		for _, b := range resp.Brokers {
			got = append(got, b.Host+":"+itoa(b.Port))
		}
		if strings.Join(got, ",") != strings.Join(sec.Bootstrap, ",") {
			t.Fatalf("metadata through %s lists %v, want the SASL_SSL listeners %v", addr, got, sec.Bootstrap)
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Bootstrap...), kgo.DefaultProduceTopic("secured"),
		kgo.AllowAutoTopicCreation()}, cfg.FranzOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}
	// The plaintext listeners are the inter-broker ones; a client there sees them.
	plain, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range resp.Brokers {
		if a := b.Host + ":" + itoa(b.Port); strings.Contains(strings.Join(sec.Bootstrap, ","), a) {
			t.Fatalf("metadata on the plaintext listener lists the SASL_SSL address %s", a)
		}
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
