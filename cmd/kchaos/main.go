// Command kchaos is the kchaos harness: a reference Kafka broker, load generators, a chaos
// controller, a checker and reports, behind one binary. See README.md for the commands.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=..."; default "dev".
var version = "dev"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "kchaos",
		Short:         "Measure what Kafka delivery settings really buy you",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, add := range commands {
		root.AddCommand(add())
	}
	return root
}

// commands holds the constructors of the subcommands; each command's file registers itself.
var commands []func() *cobra.Command

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kchaos:", err)
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific exit status (the checker exits 1 on a forbidden anomaly).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 2
}
