package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/broker/local"
)

func init() { commands = append(commands, newClusterCmd) }

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Run a local cluster of broker processes"}
	var (
		cfg     local.Config
		sets    []string
		metrics bool
	)
	up := &cobra.Command{
		Use:   "up --brokers N --dir DIR",
		Short: "Start a local cluster in the foreground; Ctrl-C stops it",
		Long: `Start N 'kchaos broker' processes on loopback ports, wait until each accepts
connections, print the bootstrap list, and stop every broker cleanly on Ctrl-C or SIGTERM.
Each broker's data and log live under DIR/node-N.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			props, err := parseSets(sets)
			if err != nil {
				return err
			}
			cfg.Props = props
			cfg.Metrics = metrics
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			c, err := local.Start(ctx, cfg)
			if err != nil {
				return err
			}
			if s := c.Secured; s != nil {
				fmt.Println(strings.Join(s.Bootstrap, ","))
				fmt.Printf("client properties (%s", s.Protocol)
				if s.User != "" {
					fmt.Printf(", user %s", s.User)
				}
				fmt.Printf("): %s\n", s.ClientProperties)
				fmt.Fprintf(os.Stderr, "plaintext inter-broker listeners (loopback, unauthenticated): %s\n", strings.Join(c.Bootstrap(), ","))
			} else {
				fmt.Println(strings.Join(c.Bootstrap(), ","))
			}
			for _, n := range c.Nodes {
				if m := n.MetricsAddr(); m != "" {
					fmt.Fprintf(os.Stderr, "broker %d metrics: http://%s/metrics\n", n.ID, m)
				}
			}
			<-ctx.Done()
			return c.Stop()
		},
	}
	f := up.Flags()
	f.IntVar(&cfg.Brokers, "brokers", 1, "number of broker processes")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the brokers' data and logs (required)")
	f.StringVar(&cfg.Host, "host", "127.0.0.1", "loopback address to listen on")
	f.StringArrayVar(&sets, "set", nil, "broker setting key=value given to every broker")
	f.BoolVar(&metrics, "metrics", true, "serve each broker's Prometheus metrics")
	f.StringVar(&cfg.Security, "security", "", "add a client listener of this protocol to every broker (ssl, sasl_plaintext, sasl_ssl), with a CA, certificates and a SCRAM-SHA-512 user made under DIR/security; the first line printed is then that listener's bootstrap list, the second the client properties file to use")
	up.MarkFlagRequired("dir")
	cmd.AddCommand(up)
	return cmd
}
