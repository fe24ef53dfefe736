package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/broker"
)

func init() { commands = append(commands, newBrokerCmd) }

func newBrokerCmd() *cobra.Command {
	var (
		cfg   broker.Config
		sets  []string
		level string
	)
	cmd := &cobra.Command{
		Use:   "broker --node-id N --listen HOST:PORT --data-dir DIR [--set key=value ...]",
		Short: "Run one reference broker in the foreground",
		Long: `Run one kchaos reference broker in the foreground. With no quorum flags it is a
single-node cluster (its own controller) with Kafka's defaults: auto.create.topics.enable=true,
num.partitions=1. SIGTERM or Ctrl-C shuts it down cleanly: logs are flushed and closed, so the
next start needs no recovery.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			props, err := parseSets(sets)
			if err != nil {
				return err
			}
			cfg.Props = props
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: %w", level, err)
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
			b, err := broker.New(cfg, broker.Options{Logger: logger})
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
