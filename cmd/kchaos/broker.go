package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/broker"
	"github.com/kchaos/kchaos/broker/clock"
	"github.com/kchaos/kchaos/broker/storage"
	"github.com/kchaos/kchaos/broker/storage/faultfs"
)

func init() { commands = append(commands, newBrokerCmd) }

func newBrokerCmd() *cobra.Command {
	var (
		cfg       broker.Config
		sets      []string
		level     string
		voters    string
		peers     []string
		raftPeers []string
		noFaults  bool
		noClock   bool
	)
	cmd := &cobra.Command{
		Use:   "broker --node-id N --listen HOST:PORT --data-dir DIR [--voters 1@HOST:PORT,...] [--controller-listen HOST:PORT] [--set key=value ...]",
		Short: "Run one reference broker in the foreground",
		Long: `Run one kchaos reference broker in the foreground. Every broker is a node of a
cluster with a KRaft-style controller quorum: it registers with the active controller, keeps
its topics in the quorum's Raft log (DATA_DIR/controller) and replicates partitions with
Kafka's ISR protocol. With no quorum flags it is a cluster of one, the only voter of its own
quorum on its controller listener (--controller-listen, default an ephemeral port on the
--listen host), with Kafka's defaults for a lone broker: auto.create.topics.enable=true,
num.partitions=1, replication factor 1, internal topics with one replica. With --voters (node
ids with their Raft addresses, like KRaft's controller.quorum.voters) it is one node of a
replicated cluster. It logs "broker listening" once its listener is open and "broker ready"
once it has caught up with the metadata log and serves requests. SIGTERM or Ctrl-C shuts it
down cleanly: logs are flushed and closed, so the next start needs no recovery.

Disk faults of the chaos controller go through the broker's storage: the file
DATA_DIR/.kchaos-disk-fault, reread at most every 20ms, holds "full" (writes fail with
ENOSPC and producers get KAFKA_STORAGE_ERROR), "slow=DURATION" (each write and fsync waits)
or nothing; DATA_DIR/.kchaos-synced journals fsyncs so a simulated power loss can drop what
was not fsynced. --no-disk-faults turns both off.

Clock faults go through the broker's wall clock (package broker/clock): the file
DATA_DIR/.kchaos-clock, reread at most every 20ms, holds "offset=DURATION" (the clock runs
that far ahead, or behind when negative) and/or "strobe=DELTA,PERIOD" (another DELTA during
every other PERIOD), or nothing. It moves LogAppendTime, retention, producer-id expiration,
transaction and group timeouts, offset commit times and the ISR's lag; timers and the Raft
quorum keep the monotonic clock. --no-clock-faults turns it off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			props, err := parseSets(sets)
			if err != nil {
				return err
			}
			cfg.Props = props
			if cfg.Voters, err = parseVoters(voters); err != nil {
				return err
			}
			if cfg.Peers, err = parsePeers("--peer", peers); err != nil {
				return err
			}
			if cfg.RaftPeers, err = parsePeers("--raft-peer", raftPeers); err != nil {
				return err
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: %w", level, err)
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
			opts := broker.Options{Logger: logger}
			if !noFaults && cfg.DataDir != "" {
				ffs, err := faultfs.New(storage.OS, cfg.DataDir, logger)
				if err != nil {
					return err
				}
				defer ffs.Close()
				opts.FS = ffs
			}
			if !noClock && cfg.DataDir != "" {
				if opts.Clock, err = clock.New(cfg.DataDir, logger); err != nil {
					return err
				}
			}
			b, err := broker.New(cfg, opts)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return b.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.Int32Var(&cfg.NodeID, "node-id", 1, "the broker's node.id")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "client listener address (HOST:PORT; port 0 picks one)")
	f.StringVar(&cfg.AdvertisedAddr, "advertise", "", "address put in metadata (default: the listener's address)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for partition logs and broker metadata (required)")
	f.StringVar(&cfg.MetricsAddr, "metrics", "", "serve Prometheus metrics on HOST:PORT/metrics")
	f.StringVar(&cfg.ClusterID, "cluster-id", "kchaos-local", "cluster id reported to clients")
	f.StringArrayVar(&sets, "set", nil, "broker setting key=value (server.properties names, e.g. num.partitions=3)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&voters, "voters", "", "controller quorum voters ID@HOST:PORT,... (Raft addresses); empty: a cluster of one, this broker its only voter")
	f.StringVar(&cfg.ControllerListen, "controller-listen", "", "this node's controller listener, HOST:PORT (default: its --voters entry; without --voters an ephemeral port on the --listen host)")
	f.StringArrayVar(&peers, "peer", nil, "ID=HOST:PORT: the Kafka address to dial for broker ID (replication and controller requests)")
	f.StringArrayVar(&raftPeers, "raft-peer", nil, "ID=HOST:PORT: the Raft address to dial for voter ID")
	f.BoolVar(&noFaults, "no-disk-faults", false, "do not watch DATA_DIR/"+faultfs.ControlFile+" for disk faults nor journal fsyncs to DATA_DIR/"+faultfs.JournalFile)
	f.BoolVar(&noClock, "no-clock-faults", false, "do not watch DATA_DIR/"+clock.ControlFile+" for clock faults")
	cmd.MarkFlagRequired("data-dir")
	return cmd
}

// parseSets turns --set key=value flags into a map, rejecting malformed ones.
func parseSets(sets []string) (map[string]string, error) {
	props := map[string]string{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want key=value", s)
		}
		props[k] = v
	}
	return props, nil
}

// parseVoters parses ID@HOST:PORT,... into a map.
func parseVoters(s string) (map[int32]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[int32]string{}
	for _, v := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(v, "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || addr == "" {
			return nil, fmt.Errorf("--voters %q: want ID@HOST:PORT,...", s)
		}
		out[int32(n)] = addr
	}
	return out, nil
}

// parsePeers parses repeated ID=HOST:PORT flags into a map.
func parsePeers(flag string, vals []string) (map[int32]string, error) {
	out := map[int32]string{}
	for _, v := range vals {
		id, addr, ok := strings.Cut(v, "=")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || addr == "" {
			return nil, fmt.Errorf("%s %q: want ID=HOST:PORT", flag, v)
		}
		out[int32(n)] = addr
	}
	return out, nil
}
