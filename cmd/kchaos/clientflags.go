package main

import (
	"fmt"
	"io"
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

// runClient is how one configuration's clients reach the cluster.
type runClient struct {
	bootstrap []string
	client    *clientconfig.Config
}

// resolveClients resolves each configuration's connection properties for its driver, before
// anything runs, and its bootstrap list: --bootstrap, else bootstrap.servers, else nil (the
// embedded cluster, which is plaintext). Notes on properties without effect go to w.
func resolveClients(plan *workloads.Plan, bootstrap string, w io.Writer) ([]runClient, error) {
	out := make([]runClient, len(plan.Configs))
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
		out[i] = runClient{bootstrap: splitList(bootstrap), client: cfg}
		if len(out[i].bootstrap) == 0 {
			out[i].bootstrap = cfg.Bootstrap
		}
		if len(out[i].bootstrap) == 0 && cfg.Protocol != clientconfig.Plaintext {
			return nil, fmt.Errorf("run %s: security.protocol=%s needs a cluster that speaks it: give --bootstrap or bootstrap.servers (the embedded cluster is plaintext)", rc.Config, cfg.Protocol)
		}
	}
	return out, nil
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
