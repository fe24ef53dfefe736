package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/broker"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/loadgen"
	"github.com/kchaos/kchaos/workloads"
)

func init() { commands = append(commands, newRunCmd) }

func newRunCmd() *cobra.Command {
	var (
		bootstrap   string
		clusterFile string
		out         string
		linear      bool
		seed        int64
		sets        []string
		target      targetOpts
		clientFile  string
		driverFile  string
	)
	cmd := &cobra.Command{
		Use:   "run WORKLOAD.yaml [--bootstrap host:port,... [--cluster-file FILE]] [--out DIR]",
		Short: "Run a workload file: every matrix combination, then check each history",
		Long: `run loads and validates a workload file, expands its matrix and runs each
combination in turn: against a fresh embedded local cluster (default; data under
DIR/CONFIG/cluster) or the cluster named by --bootstrap, whose faults the ssh driver makes with
the commands of --cluster-file (see chaos.SSHCluster). Each configuration gets a folder with
its history.jsonl, HdrHistogram interval logs, per-second series, result.json and the checker's
verdict.json. Ctrl-C stops the run in progress and still checks what ran.

Faults on the embedded cluster go through link proxies (--chaos-driver local, the default) or,
as root on Linux, through real packets (--chaos-driver netns): each broker in its own network
namespace, cuts as nftables rules, bandwidth as an htb qdisc (latency and loss need netem), a
full disk as a filled tmpfs data directory of --netns-disk bytes.

Exit status: 0 when every claimed guarantee held, 1 when a forbidden anomaly was found, 2 on
bad input or when a configuration could not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wopts, err := clientOptions(clientFile, driverFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			plan, err := workloads.LoadWith(args[0], wopts)
			if err != nil {
				return err
			}
			clients, err := resolveClients(plan, bootstrap, cmd.ErrOrStderr())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			props, err := parseSets(sets)
			if err != nil {
				return err
			}
			if err := broker.ValidateProps(props); err != nil {
				return err
			}
			if err := target.validate(); err != nil {
				return err
			}
			if target.driver == "netns" && bootstrap != "" {
				return errors.New("run: --chaos-driver netns starts its own cluster; it cannot drive --bootstrap")
			}
			if out == "" {
				out = filepath.Join("out", plan.Workload.Name+"-"+time.Now().Format("20060102-150405"))
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if seed == 0 {
				seed = time.Now().UnixNano()
			}
			var remote *chaos.SSH
			if clusterFile != "" {
				if bootstrap == "" {
					return &exitError{code: 2, err: errors.New("run: --cluster-file drives faults on an external cluster; give its --bootstrap too")}
				}
				cl, err := chaos.LoadSSHCluster(clusterFile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if remote, err = chaos.NewSSH(cl); err != nil {
					return &exitError{code: 2, err: err}
				}
				defer remote.Close()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "chaos seed %d (replay with --seed %d)\n", seed, seed)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			var rows []runRow
			failed := 0
			for i, rc := range plan.Configs {
				if ctx.Err() != nil {
					break
				}
				dir := filepath.Join(out, configDir(rc.Config))
				fmt.Fprintf(cmd.OutOrStdout(), "== %s: %s\n", plan.Workload.Name, rc.Config)
				res, err := runConfig(ctx, rc, dir, clients[i].bootstrap, clients[i].client, remote, props, seed, logger, cmd.OutOrStdout(), target)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("run %s: %w", rc.Config, err)}
				}
				verdict, err := checkOne(cmd.OutOrStdout(), filepath.Join(dir, historyFile), linear, 30*time.Second)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if verdict.Failed() {
					failed++
				}
				rows = append(rows, runRow{rc.Config, res, verdict.Failed()})
			}
			printRunTable(cmd.OutOrStdout(), rows)
			if len(rows) > 0 {
				if err := writeReport(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nrun directory: %s\n", out)
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("run: %d of %d configurations broke a claimed guarantee", failed, len(rows))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&bootstrap, "bootstrap", "", "comma-separated brokers of an external cluster (default: an embedded local cluster)")
	cmd.Flags().StringVar(&clusterFile, "cluster-file", "", "with --bootstrap: ssh cluster file whose per-fault commands make the workload's faults on the external cluster")
	cmd.Flags().StringVar(&out, "out", "", "run directory (default out/NAME-TIMESTAMP)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "broker setting key=value for the embedded cluster (server.properties names)")
	cmd.Flags().Int64Var(&seed, "seed", 0, "seed of the chaos schedule and its random choices (default: from the clock, printed)")
	cmd.Flags().StringVar(&target.driver, "chaos-driver", "local", "chaos driver of the embedded cluster: local (userspace link proxies, no root) or netns (root on Linux: each broker in its own network namespace, cuts as nftables rules, a tmpfs data directory per broker)")
	cmd.Flags().StringVar(&target.netnsDisk, "netns-disk", "256MiB", "size of each broker's tmpfs data directory with --chaos-driver netns")
	cmd.Flags().StringVar(&clientFile, "client-config", "", "Kafka client properties file (Java .properties: security.protocol, ssl.*, sasl.*, acks, linger.ms, ...) for every client of the run")
	cmd.Flags().StringVar(&driverFile, "driver-config", "", "OpenMessaging Benchmark Kafka driver file (kafka.yaml): replication factor, topic configs and client properties")
	cmd.Flags().BoolVar(&linear, "linear", false, "also check each partition's log for linearizability with porcupine (slow on long runs; kchaos check --linear does it later)")
	return cmd
}

// runConfig runs one configuration into dir: target up, faults scheduled, load, history,
// everything healed, target down.
func runConfig(ctx context.Context, rc workloads.RunConfig, dir string, bootstrap []string, client *clientconfig.Config, remote *chaos.SSH, props map[string]string, seed int64, logger *slog.Logger, status io.Writer, target targetOpts) (*loadgen.Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	faults, err := chaos.Parse(rc.Chaos)
	if err != nil {
		return nil, err
	}
	var rid [8]byte
	rand.Read(rid[:])
	runID := hex.EncodeToString(rid[:])
	topics := loadgen.TopicNames(rc, runID)
	// "topic-N" in a workload's chaos section is the run's N-th topic.
	chaos.RenameTopics(faults, func(t string) string {
		if m := workloadTopic.FindStringSubmatch(t); m != nil {
			if n, _ := strconv.Atoi(m[1]); n < len(topics) {
				return topics[n]
			}
		}
		return t
	})
	var driver chaos.Driver
	if remote != nil {
		driver = remote
	}
	if len(bootstrap) == 0 && target.driver == "netns" {
		b, d, done, err := startNetnsTarget(ctx, rc, dir, props, logger, target)
		if err != nil {
			return nil, err
		}
		defer done()
		bootstrap, driver = b, d
	} else if len(bootstrap) == 0 {
		brokers := max(1, rc.ReplicationFactor)
		net := chaos.NewNet(seed)
		cfg := local.Config{Brokers: brokers, Dir: filepath.Join(dir, "cluster"), Metrics: true, Logger: logger,
			Props: map[string]string{"group.initial.rebalance.delay.ms": "0"}}
		maps.Copy(cfg.Props, props)
		var routeErr error
		cfg.Route = func(from, to int32, raft bool, addr string) string {
			id := chaos.LinkID{From: from, To: to, Plane: chaos.PlaneKafka}
			switch {
			case from == local.ClientLinks:
				id = chaos.LinkID{From: chaos.Clients, To: to, Plane: chaos.PlaneClient}
			case raft:
				id.Plane = chaos.PlaneRaft
			}
			if a := net.Addr(id); a != "" {
				// Start retried on new ports: same proxy, new upstream.
				net.SetUpstream(id.To, id.Plane, addr)
				return a
			}
			p, err := net.Add(id, addr)
			if err != nil {
				routeErr = errors.Join(routeErr, err)
				return addr
			}
			return p.Addr()
		}
		c, err := local.Start(ctx, cfg)
		if err != nil {
			net.Close()
			return nil, err
		}
		defer net.Close()
		defer c.Stop()
		if routeErr != nil {
			return nil, routeErr
		}
		defer startSampler(c, dir)()
		bootstrap = c.Bootstrap()
		ld := &chaos.Local{Nodes: map[int32]chaos.Process{}}
		if brokers > 1 {
			ld.Net = net
		}
		for _, n := range c.Nodes {
			ld.Nodes[n.ID] = n
		}
		driver = ld
	}
	f, err := os.Create(filepath.Join(dir, historyFile))
	if err != nil {
		return nil, err
	}
	hw := history.NewWriter(f)
	resolver, err := chaos.NewKafkaResolver(bootstrap, client.FranzOpts()...)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer resolver.Close()
	minISR, _ := strconv.Atoi(rc.TopicConfigStrings()["min.insync.replicas"])
	octx, stopObserver := context.WithCancel(ctx)
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		chaos.Observe(octx, resolver, hw, topics, minISR, 500*time.Millisecond)
	}()
	defer func() { stopObserver(); <-observed }()
	var runner *chaos.Runner
	consumerFaults := make(chan loadgen.ConsumerFault, 16)
	if len(faults) > 0 {
		if driver == nil && slices.ContainsFunc(faults, func(f chaos.Fault) bool { return f.Kind.Class() != "consumer" }) {
			f.Close()
			return nil, errors.New("the workload has faults, but with --bootstrap no chaos driver can reach the cluster (give --cluster-file for the ssh driver, or use the embedded cluster)")
		}
		// Consumer faults go to the load generator's consumers.
		withConsumers := chaos.WithConsumers(driver, func(cf chaos.ConsumerFault) error {
			lf := loadgen.ConsumerFault{Consumer: cf.Consumer, Kind: loadgen.FaultCrash, For: cf.For}
			if cf.Kind == chaos.StallConsumer {
				lf.Kind = loadgen.FaultStall
			}
			select {
			case consumerFaults <- lf:
				return nil
			default:
				return errors.New("chaos: consumer fault queue full")
			}
		})
		runner, err = chaos.Start(ctx, faults, chaos.Env{Seed: seed, Duration: time.Duration(rc.Warmup + rc.Duration),
			Driver: withConsumers, Resolver: resolver, History: hw, RunDir: dir, Logger: logger})
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	res, runErr := loadgen.Run(ctx, rc, loadgen.Options{Bootstrap: bootstrap, Client: client, OutDir: dir, History: hw, Logger: logger, Status: status, RunID: runID,
		ConsumerFaults: consumerFaults})
	stopObserver()
	<-observed
	var healErr error
	if runner != nil {
		healErr = runner.Heal()
		for _, ferr := range runner.Failures() {
			fmt.Fprintf(status, "warning: fault not applied: %v\n", ferr)
		}
	}
	werr := hw.Close()
	ferr := f.Close()
	if healErr != nil {
		return nil, fmt.Errorf("heal: %w", healErr)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return nil, runErr
	}
	if err := errors.Join(werr, ferr); err != nil {
		return nil, err
	}
	return res, nil
}

type runRow struct {
	config string
	res    *loadgen.Result
	failed bool
}

// printRunTable prints one line per configuration in aligned columns.
func printRunTable(w io.Writer, rows []runRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// acks=0 sends are never acknowledged, so SENT/s is their throughput; ACKED/s is for the rest.
	fmt.Fprintln(tw, "\nCONFIG\tSENT\tACKED\tFAILED\tINDETERMINATE\tDRAINED\tSENT/s\tACKED/s\tVERDICT")
	for _, r := range rows {
		var sent, acked float64
		if s := r.res.Elapsed.Seconds(); s > 0 {
			sent, acked = float64(r.res.Sent)/s, float64(r.res.Acked)/s
		}
		verdict := "ok"
		if r.failed {
			verdict = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%s\n", r.config, r.res.Sent, r.res.Acked, r.res.Failed, r.res.Indeterminate, r.res.Drained, sent, acked, verdict)
	}
	tw.Flush()
}

// workloadTopic matches the chaos section's name for the workload's N-th topic.
var workloadTopic = regexp.MustCompile(`^topic-(\d+)$`)

var unsafeDirChars = regexp.MustCompile(`[^A-Za-z0-9._=,-]+`)

// configDir turns a configuration name into a folder name.
func configDir(config string) string { return unsafeDirChars.ReplaceAllString(config, "_") }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
