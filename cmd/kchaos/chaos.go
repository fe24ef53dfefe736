package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/workloads"
)

func init() { commands = append(commands, newChaosCmd) }

func newChaosCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "chaos", Short: "Chaos controller tools: heal after a crash, show a schedule"}
	cmd.AddCommand(newChaosHealCmd(), newChaosScheduleCmd())
	return cmd
}

func newChaosHealCmd() *cobra.Command {
	var clusterFile string
	cmd := &cobra.Command{
		Use:   "heal RUNDIR",
		Short: "Undo what a crashed kchaos run left according to its chaos-actions.jsonl journals",
		Long: `heal reads every chaos-actions.jsonl under RUNDIR and undoes each change that has no
undo record: a broker the run paused (SIGSTOP) is resumed, but only if the pid is still the
kchaos broker process recorded (same start time and command line). Killed brokers and link
proxies need nothing: they ended with the harness. What the netns driver made (network
namespaces, veth and bridge links, nftables tables, qdiscs, disk fillers, tmpfs mounts, all
named kchaos-RUN...) is removed if still there; its fabric journal (RUNDIR/.../netns) is healed
after the faults. Changes the ssh driver made on remote hosts are undone by running their
recorded undo command there, which needs the run's --cluster-file (the journal holds no
credentials). Each undo is journalled, so healing twice is harmless.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var dirs []string
			err := filepath.WalkDir(args[0], func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() && d.Name() == chaos.JournalFile {
					dirs = append(dirs, filepath.Dir(p))
				}
				return nil
			})
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("chaos heal: %w", err)}
			}
			out := cmd.OutOrStdout()
			if len(dirs) == 0 {
				fmt.Fprintf(out, "no %s under %s: nothing to heal\n", chaos.JournalFile, args[0])
				return nil
			}
			var opts chaos.HealOptions
			if clusterFile != "" {
				cl, err := chaos.LoadSSHCluster(clusterFile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if opts.SSH, err = chaos.NewSSH(cl); err != nil {
					return &exitError{code: 2, err: err}
				}
				defer opts.SSH.Close()
			}
			total := 0
			for _, dir := range dirs {
				report, err := chaos.HealDirWith(cmd.Context(), dir, opts)
				for _, line := range report {
					fmt.Fprintf(out, "%s: %s\n", dir, line)
				}
				total += len(report)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("chaos heal %s: %w", dir, err)}
				}
			}
			fmt.Fprintf(out, "healed %d change(s) in %d journal(s)\n", total, len(dirs))
			return nil
		},
	}
	cmd.Flags().StringVar(&clusterFile, "cluster-file", "", "the run's ssh cluster file, to undo changes the ssh driver made on remote hosts")
	return cmd
}

func newChaosScheduleCmd() *cobra.Command {
	var (
		seed     int64
		duration time.Duration
		brokers  int
	)
	cmd := &cobra.Command{
		Use:   "schedule WORKLOAD.yaml [--seed N] [--duration D] [--brokers N]",
		Short: "Print the fault schedule a workload's chaos section gives for a seed, as JSON lines",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := workloads.Load(args[0])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			rc := plan.Configs[0]
			faults, err := chaos.Parse(rc.Chaos)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if duration == 0 {
				duration = time.Duration(rc.Warmup + rc.Duration)
			}
			if brokers == 0 {
				brokers = max(1, rc.ReplicationFactor)
			}
			acts, err := chaos.Schedule(seed, faults, duration, chaos.View{Brokers: brokers})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# seed %d, duration %s, %d brokers\n", seed, duration, brokers)
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, a := range acts {
				if err := enc.Encode(a); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&seed, "seed", 1, "schedule seed")
	cmd.Flags().DurationVar(&duration, "duration", 0, "run length (default the workload's warmup + duration)")
	cmd.Flags().IntVar(&brokers, "brokers", 0, "cluster size (default the workload's replication factor)")
	return cmd
}
