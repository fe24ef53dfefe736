package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/workloads"
)

// clientOptions reads --client-config (a Java .properties file) and --driver-config (an OMB
// Kafka driver file) into the workload's options: the driver file's blocks first, the
// properties file over them.
func clientOptions(clientFile, driverFile string) (workloads.Options, error) {
	var opts workloads.Options
	add := func(ps *clientconfig.Properties, scope string) {
		for _, p := range ps.List() {
			opts.Client = append(opts.Client, workloads.ClientProperty{Key: p.Key, Value: p.Value, Where: p.Where, Scope: scope})
		}
	}
	if driverFile != "" {
		d, err := clientconfig.LoadOMBDriver(driverFile)
		if err != nil {
			return opts, err
		}
		opts.ReplicationFactor, opts.ReplicationFactorWhere = d.ReplicationFactor, d.ReplicationFactorWhere
		for _, p := range d.TopicConfig.List() {
			opts.TopicConfig = append(opts.TopicConfig, workloads.ClientProperty{Key: p.Key, Value: p.Value, Where: p.Where})
		}
		add(d.Common, "")
		add(d.Producer, workloads.ScopeProducer)
		add(d.Consumer, workloads.ScopeConsumer)
	}
	if clientFile != "" {
		ps, err := clientconfig.LoadProperties(clientFile)
		if err != nil {
			return opts, err
		}
		add(ps, "")
	}
	return opts, nil
}

// runClients are the configurations' client settings, in plan order.
type runClients struct {
	configs []string
	clients []*clientconfig.Config
	// flag is --bootstrap's list; empty when not given.
	flag []string
}

// resolveClients resolves each configuration's connection properties for its driver before
// anything runs. Notes on properties without effect go to w.
func resolveClients(plan *workloads.Plan, bootstrap string, w io.Writer) (*runClients, error) {
	out := &runClients{flag: splitList(bootstrap)}
	noted := map[string]bool{}
	for i := range plan.Configs {
		rc := &plan.Configs[i]
		ps, err := clientconfig.FromRun(rc)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", rc.Config, err)
		}
		cfg, err := clientconfig.Resolve(ps, rc.Driver)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", rc.Config, err)
		}
		for _, n := range cfg.Notes {
			if !noted[n] {
				noted[n] = true
				fmt.Fprintf(w, "note: %s\n", n)
			}
		}
		out.configs = append(out.configs, rc.Config)
		out.clients = append(out.clients, cfg)
	}
	return out, nil
}

// bootstrap returns the cluster the run acts on: --bootstrap, else the configurations'
// bootstrap.servers (which must agree), else none (the embedded cluster, which is plaintext).
func (c *runClients) bootstrap() ([]string, error) {
	if len(c.flag) > 0 {
		return c.flag, nil
	}
	var boot []string
	for i, cfg := range c.clients {
		switch {
		case i == 0:
			boot = cfg.Bootstrap
		case !slices.Equal(boot, cfg.Bootstrap):
			return nil, fmt.Errorf("run: configurations %s and %s name different bootstrap.servers; one run acts on one cluster", c.configs[0], c.configs[i])
		}
	}
	for i, cfg := range c.clients {
		if len(boot) == 0 && cfg.Protocol != clientconfig.Plaintext {
			return nil, fmt.Errorf("run %s: security.protocol=%s needs a cluster that speaks it: give --bootstrap or bootstrap.servers (the embedded cluster is plaintext)", c.configs[i], cfg.Protocol)
		}
	}
	return boot, nil
}

// byConfig returns the client settings by configuration name.
func (c *runClients) byConfig() map[string]*clientconfig.Config {
	m := make(map[string]*clientconfig.Config, len(c.configs))
	for i, name := range c.configs {
		m[name] = c.clients[i]
	}
	return m
}

// groupsClient resolves `kchaos groups --client-config` for franz-go; bootstrap.servers from
// the file is used when --bootstrap was not given.
func groupsClient(clientFile, bootstrap string, bootstrapSet bool) ([]string, *clientconfig.Config, error) {
	var ps *clientconfig.Properties
	if clientFile != "" {
		var err error
		if ps, err = clientconfig.LoadProperties(clientFile); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := clientconfig.Resolve(ps, "franz-go")
	if err != nil {
		return nil, nil, err
	}
	seeds := strings.Split(bootstrap, ",")
	if !bootstrapSet && len(cfg.Bootstrap) > 0 {
		seeds = cfg.Bootstrap
	}
	return seeds, cfg, nil
}
