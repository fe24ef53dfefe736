package run

import (
	"context"
	"io"
	"log/slog"

	"github.com/kchaos/kchaos/chaos"
	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/loadgen"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/workloads"
)

// Load runs one configuration's producers and consumers against a cluster and reports what
// they did. It is the run's only contact with the load: the load generator in this process
// (InProcess) today, a coordinator of workers on other machines later, which streams the
// workers' events into the same history and merges their results.
type Load interface {
	Run(ctx context.Context, job LoadJob) (*rundir.Result, error)
}

// LoadJob is one configuration's load, as the run hands it over.
type LoadJob struct {
	// Config is the configuration to run (defaults applied).
	Config workloads.RunConfig
	// RunID names the run in the history and in every record header; its topics are
	// loadgen.TopicNames(Config, RunID).
	RunID string
	// Bootstrap lists the cluster's brokers.
	Bootstrap []string
	// Client says how the load's clients connect (TLS, SASL); nil is plaintext.
	Client *clientconfig.Config
	// History receives the run header and every operation's events.
	History *history.Writer
	// OutDir receives the load's files: rundir.ResultFile, rundir.SeriesFile and the
	// HdrHistogram interval logs.
	OutDir string
	// ConsumerFaults delivers the chaos schedule's consumer crashes and stalls while the load
	// runs; faults for unknown consumers are ignored.
	ConsumerFaults <-chan chaos.ConsumerFault
	// Stop, when it closes, ends the producing early; the load still drains and finishes.
	Stop <-chan struct{}
	// Measure runs the load only to measure it (a performance step): no history, no final
	// drain, and its topics are deleted at the end.
	Measure bool
	// Logger receives progress; Status the live status line every second.
	Logger *slog.Logger
	Status io.Writer
}

// InProcess is the Load of this process: loadgen.Run.
type InProcess struct{}

var _ Load = InProcess{}

// Run runs job with loadgen, handing consumer faults to its consumers.
func (InProcess) Run(ctx context.Context, job LoadJob) (*rundir.Result, error) {
	var faults chan loadgen.ConsumerFault
	if job.ConsumerFaults != nil {
		faults = make(chan loadgen.ConsumerFault, cap(job.ConsumerFaults))
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-done:
					return
				case cf, ok := <-job.ConsumerFaults:
					if !ok {
						return
					}
					select {
					case faults <- loadgenFault(cf):
					case <-done:
						return
					}
				}
			}
		}()
	}
	return loadgen.Run(ctx, job.Config, loadgen.Options{Bootstrap: job.Bootstrap, Client: job.Client, OutDir: job.OutDir, History: job.History,
		Logger: job.Logger, Status: job.Status, RunID: job.RunID, ConsumerFaults: faults, Measure: job.Measure, Stop: job.Stop})
}

// loadgenFault is cf as loadgen's consumers take it: restart-consumer is a crash with a delay.
func loadgenFault(cf chaos.ConsumerFault) loadgen.ConsumerFault {
	lf := loadgen.ConsumerFault{Consumer: cf.Consumer, Kind: loadgen.FaultCrash, For: cf.For}
	if cf.Kind == chaos.StallConsumer {
		lf.Kind = loadgen.FaultStall
	}
	return lf
}
