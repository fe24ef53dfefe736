package target

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/chaos"
)

// External is a cluster kchaos did not start, named by its bootstrap list. With an ssh
// cluster file its faults are made by the ssh driver; without one only consumer faults can
// run. Its processes are not sampled.
type External struct {
	bootstrap []string
	ssh       *chaos.SSH
	resolver  *chaos.KafkaResolver
}

var _ Target = (*External)(nil)

// newExternal connects a resolver to bootstrap with the client options opts (TLS, SASL); ssh
// may be nil and stays the Provider's.
func newExternal(bootstrap []string, ssh *chaos.SSH, opts ...kgo.Opt) (*External, error) {
	r, err := chaos.NewKafkaResolver(bootstrap, opts...)
	if err != nil {
		return nil, err
	}
	return &External{bootstrap: bootstrap, ssh: ssh, resolver: r}, nil
}

// Bootstrap returns the bootstrap list as given.
func (e *External) Bootstrap() []string { return e.bootstrap }

// Driver returns the ssh driver, or nil without a cluster file.
func (e *External) Driver() chaos.Driver {
	if e.ssh == nil {
		return nil
	}
	return e.ssh
}

// Resolver returns a KafkaResolver on the cluster.
func (e *External) Resolver() chaos.Resolver { return e.resolver }

// Sampler returns nil: the brokers are not this machine's processes.
func (e *External) Sampler() *Sampler { return nil }

// Close closes the resolver; the cluster and the ssh driver stay.
func (e *External) Close() error {
	e.resolver.Close()
	return nil
}
