package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kchaos/kchaos/clientconfig"
	"github.com/kchaos/kchaos/history"
	"github.com/kchaos/kchaos/rundir"
	"github.com/kchaos/kchaos/workloads"
)

// Options say where and how to run a RunConfig.
type Options struct {
	// Bootstrap lists the cluster's brokers (host:port).
	Bootstrap []string
	// Client says how every client of the run connects (TLS, SASL); nil is plaintext.
	Client *clientconfig.Config
	// OutDir receives series.json, result.json and HdrHistogram interval logs
	// (publish-latency.hlog, publish-delay.hlog, end-to-end.hlog); empty writes none.
	OutDir string
	// History receives every operation; Run writes the run header first. Nil records none.
	History *history.Writer
	// Logger receives progress lines; default slog.Default().
	Logger *slog.Logger
	// Status receives the live status line every second; default os.Stdout. On a terminal
	// the line is redrawn in place; otherwise it is a plain log line.
	Status io.Writer
	// RunID names the run in the history and in every record header; default random.
	RunID string
	// CatchUpTimeout bounds how long consumers may take to catch up after producers stop;
	// default 30s.
	CatchUpTimeout time.Duration
	// DrainTimeout bounds the final drain; default 60s.
	DrainTimeout time.Duration
	// Stop, when it closes, ends the producing early as if the duration had passed: consumers
	// catch up and the final drain runs as usual (the disk guard of kchaos run uses it).
	Stop <-chan struct{}
	// Measure, when set, runs the load only to measure it: consumers stop with the producers
	// (no catch-up), there is no final drain, and the run's topics are deleted at the end so
	// what it wrote costs no disk. The performance steps of kchaos run use it.
	Measure bool
	// Driver, when set, replaces NewDriver (tests, benchmarks).
	Driver Driver
	// ConsumerFaults, when set, delivers consumer crashes and stalls during the run (the
	// chaos controller's hook); faults for unknown consumers are ignored.
	ConsumerFaults <-chan ConsumerFault
}

// runner holds one run's shared state.
type runner struct {
	cfg  workloads.RunConfig
	opts Options
	// halt is done when producers must stop sending: ctx ended or Options.Stop closed.
	halt        context.Context
	log         *slog.Logger
	runID       uint64
	runName     string
	hw          *history.Writer
	histOff     atomic.Bool // set by stopHistory: later events are dropped
	counts      counters
	measureFrom time.Time
	backlog     int64 // bytes of backlog before consumers start (consumerBacklogSizeGB)
	backlogOpen bool
	backlogMu   sync.Mutex // guards backlogOpen
	producing   chan struct{}
}

// hist writes e to the history, if the run has one and stopHistory was not called. It does
// not keep e. A write error shows when stopHistory flushes the history.
func (r *runner) hist(e *history.Event) {
	if r.hw != nil && !r.histOff.Load() {
		_ = r.hw.Write(e)
	}
}

// stopHistory drops later events and writes the history's pending events out, returning the
// writer's first error. It may be called more than once.
func (r *runner) stopHistory() error {
	if r.hw == nil {
		return nil
	}
	r.histOff.Store(true)
	return r.hw.Flush()
}

func (r *runner) backlogReached() bool {
	if r.backlog <= 0 {
		return true
	}
	r.backlogMu.Lock()
	defer r.backlogMu.Unlock()
	if !r.backlogOpen {
		select {
		case <-r.producing:
			r.backlogOpen = true
		default:
			r.backlogOpen = r.counts.ackedBytes.Load() >= r.backlog
		}
	}
	return r.backlogOpen
}

// Run runs cfg against the cluster in opts: creates fresh topics (and, in consumer mode
// transform, their output topics, see OutputTopics), writes the history header, starts
// consumers (transformers in mode transform) and producers, produces for warmup plus
// duration, waits for consumers to catch up, stops them, and drains every partition of every
// topic, outputs included, from the start. It returns when all of that is done or ctx ends.
// cfg must come from workloads.Load, Parse or Open (defaults applied). Process numbers in the
// history: producers 0..P-1, then consumers in topic, subscription, member order, then the
// drain.
func Run(ctx context.Context, cfg workloads.RunConfig, opts Options) (*rundir.Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Status == nil {
		opts.Status = os.Stdout
	}
	if opts.CatchUpTimeout == 0 {
		opts.CatchUpTimeout = 30 * time.Second
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 60 * time.Second
	}
	r := &runner{cfg: cfg, opts: opts, log: opts.Logger, hw: opts.History, producing: make(chan struct{})}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	r.runID = binary.BigEndian.Uint64(idb[:])
	r.runName = opts.RunID
	if r.runName == "" {
		r.runName = fmt.Sprintf("%016x", r.runID)
	} else {
		r.runID = fnv64(r.runName)
	}
	r.backlog = int64(cfg.ConsumerBacklogSizeGB * (1 << 30))
	drv := opts.Driver
	if drv == nil && len(opts.Bootstrap) == 0 {
		return nil, fmt.Errorf("loadgen: no bootstrap addresses")
	}
	if drv == nil {
		var err error
		if drv, err = NewDriver(cfg.Driver, opts.Bootstrap, opts.Client); err != nil {
			return nil, err
		}
		defer drv.Close()
	}
	topics := TopicNames(cfg, r.runName)
	transform := cfg.Consumer.Mode == workloads.ModeTransform
	var tdrv TransformDriver
	var outputs []string
	if transform {
		var ok bool
		if tdrv, ok = drv.(TransformDriver); !ok {
			return nil, fmt.Errorf("loadgen: driver %s cannot consume-transform-produce", cfg.Driver)
		}
		outputs = OutputTopics(topics)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err := drv.CreateTopics(cctx, append(slices.Clone(topics), outputs...), int32(cfg.PartitionsPerTopic), int16(cfg.ReplicationFactor), cfg.TopicConfigStrings())
	cancel()
	if err != nil {
		return nil, err
	}
	r.writeHeader(topics, outputs)
	defer func() { _ = r.stopHistory() }()
	rng := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x6b6368616f73))
	payloadFile := r.readPayloadFile()

	start := time.Now().Add(200 * time.Millisecond)
	r.measureFrom = start.Add(time.Duration(cfg.Warmup))
	stop := r.measureFrom.Add(time.Duration(cfg.Duration))
	col, err := newCollector(start, r.measureFrom, opts.OutDir)
	if err != nil {
		return nil, err
	}
	defer col.close()

	// Consumers first, so groups are formed when records arrive.
	proc := cfg.Topics * cfg.ProducersPerTopic
	consCtx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var consumers sync.WaitGroup
	var groups []*positions
	var tasks []*consumerTask
	for ti, topic := range topics {
		for s := range *cfg.SubscriptionsPerTopic {
			group := fmt.Sprintf("%s-sub-%d", topic, s)
			pos := &positions{next: map[int32]int64{}}
			groups = append(groups, pos)
			for ci := range cfg.ConsumerPerSubscription {
				set := ConsumerSettings{
					Bootstrap: opts.Bootstrap, Client: opts.Client, ClientID: fmt.Sprintf("kchaos-c%d", proc), Topic: topic, Group: group,
					AutoCommit: cfg.Consumer.Commit == workloads.CommitAuto, AutoCommitInterval: time.Duration(cfg.Consumer.AutoCommitInterval),
					ReadCommitted: cfg.Consumer.IsolationLevel == "read_committed", SessionTimeout: time.Duration(cfg.Consumer.SessionTimeout),
					MaxPollInterval: time.Duration(cfg.Consumer.MaxPollInterval),
				}
				set.fetchSettings(cfg.Consumer)
				if cfg.Consumer.StaticMembership {
					set.InstanceID = fmt.Sprintf("%s-%d", group, ci)
				}
				if cfg.Consumer.Mode == workloads.ModeAssign {
					set.Partitions = []int32{}
					for p := ci; p < cfg.PartitionsPerTopic; p += cfg.ConsumerPerSubscription {
						set.Partitions = append(set.Partitions, int32(p))
					}
				}
				ct := &consumerTask{r: r, drv: drv, settings: set, proc: proc, topic: topic, group: group, rec: newRecorder(), pos: pos,
					faults: make(chan ConsumerFault, 4)}
				var start func()
				if transform {
					ct.lagOnProcess = true
					tt := &transformTask{consumerTask: *ct, tdrv: tdrv, outTopic: outputs[ti], tset: TransformSettings{Consumer: set,
						Producer: ProducerSettings{Bootstrap: opts.Bootstrap, Client: opts.Client, ClientID: set.ClientID, TransactionalID: fmt.Sprintf("kchaos-%s-t%d", r.runName, proc),
							ProducerConfig: cfg.Producer},
						Transactional: cfg.Consumer.Commit == workloads.CommitTransactional}}
					tt.tcl, err = tdrv.NewTransformer(tt.tset)
					ct, start = &tt.consumerTask, func() { tt.run(consCtx) }
				} else {
					ct.client, err = drv.NewConsumer(set)
					start = func() { ct.run(consCtx) }
				}
				if err != nil {
					stopConsumers()
					consumers.Wait()
					return nil, err
				}
				tasks = append(tasks, ct)
				col.add(ct.rec)
				proc++
				consumers.Add(1)
				go func() { defer consumers.Done(); start() }()
			}
		}
		_ = ti
	}
	drainProc := proc
	if opts.ConsumerFaults != nil {
		go func() {
			for {
				select {
				case f := <-opts.ConsumerFaults:
					if f.Consumer >= 0 && f.Consumer < len(tasks) {
						select {
						case tasks[f.Consumer].faults <- f:
						default:
						}
					}
				case <-consCtx.Done():
					return
				}
			}
		}()
	}

	// Producers.
	nprod := cfg.Topics * cfg.ProducersPerTopic
	var producers []*producerTask
	for ti, topic := range topics {
		for pi := range cfg.ProducersPerTopic {
			p := ti*cfg.ProducersPerTopic + pi
			cl, err := drv.NewProducer(ProducerSettings{Bootstrap: opts.Bootstrap, Client: opts.Client, ClientID: fmt.Sprintf("kchaos-p%d", p),
				TransactionalID: fmt.Sprintf("kchaos-%s-p%d", r.runName, p), ProducerConfig: cfg.Producer})
			if err != nil {
				stopConsumers()
				consumers.Wait()
				return nil, err
			}
			defer cl.Close()
			pt := &producerTask{r: r, proc: p, topic: topic, client: cl, rate: cfg.ProducerRate / float64(nprod), rec: newRecorder(), outRec: newRecorder(),
				keys: newKeyChooser(&cfg, mrand.New(mrand.NewPCG(rng.Uint64(), uint64(p))))}
			if r.hw != nil {
				pt.invokes, pt.outcomes = r.hw.NewLane(), r.hw.NewLane()
			}
			if cfg.Producer.Transactional {
				tp, ok := cl.(TxnProducer)
				if !ok {
					stopConsumers()
					consumers.Wait()
					return nil, fmt.Errorf("loadgen: driver %s cannot send in transactions", cfg.Driver)
				}
				pt.txn, pt.txnRng = tp, mrand.New(mrand.NewPCG(rng.Uint64(), uint64(p)))
			}
			pt.payloads = makePayloads(int(cfg.MessageSize), payloadFile, cfg.UseRandomizedPayloads, cfg.RandomBytesRatio, cfg.RandomizedPayloadPoolSize, rng)
			pt.payloadRng = mrand.New(mrand.NewPCG(rng.Uint64(), uint64(p)))
			col.add(pt.rec)
			col.add(pt.outRec)
			producers = append(producers, pt)
		}
	}
	r.log.Info("loadgen: run starting", "run", r.runName, "config", cfg.Config, "driver", cfg.Driver, "topics", topics,
		"producers", nprod, "consumers", drainProc-nprod, "rate", cfg.ProducerRate, "duration", time.Duration(cfg.Duration))

	halt, stopHalt := context.WithCancel(ctx)
	defer stopHalt()
	r.halt = halt
	if opts.Stop != nil {
		go func() {
			select {
			case <-opts.Stop:
				stopHalt()
			case <-halt.Done():
			}
		}()
	}
	var prodWG sync.WaitGroup
	for _, p := range producers {
		prodWG.Add(1)
		go func() { defer prodWG.Done(); p.run(ctx, start, stop) }()
	}
	series := newSeriesLoop(r, drv, col, producers, groups, topics)
	seriesDone := make(chan struct{})
	seriesCtx, stopSeries := context.WithCancel(context.Background())
	go func() { defer close(seriesDone); series.loop(seriesCtx, start) }()

	prodWG.Wait()
	close(r.producing)
	elapsed := time.Since(start)
	if !opts.Measure {
		r.waitCatchUp(ctx, drv, topics, groups)
	}
	stopConsumers()
	consumers.Wait()
	stopSeries()
	<-seriesDone

	res := &rundir.Result{
		RunID: r.runName, Config: cfg.Config, Driver: cfg.Driver, Topics: topics, Elapsed: elapsed,
		Sent: r.counts.sent.Load(), Acked: r.counts.acked.Load(), Failed: r.counts.failed.Load(),
		Indeterminate: r.counts.indeterminate.Load(), Polled: r.counts.polled.Load(), Processed: r.counts.processed.Load(),
		Commits: r.counts.commits.Load(), Errors: r.counts.errorsSnapshot(),
		PublishLatency: col.total[kindPublishLatency], PublishDelay: col.total[kindPublishDelay], EndToEnd: col.total[kindEndToEnd],
		Series: series.series,
	}
	for _, p := range producers {
		if p.rate == 0 {
			res.MaxRate += p.searchBest
		}
	}
	res.Percentiles = map[string]rundir.Percentiles{}
	for k, name := range kindNames {
		res.Percentiles[name] = rundir.Summarize(col.total[k])
	}
	if opts.Measure {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = drv.DeleteTopics(dctx, append(slices.Clone(topics), outputs...))
		cancel()
	} else {
		res.Drained, err = r.drain(ctx, drv, append(slices.Clone(topics), outputs...), drainProc)
	}
	if herr := r.stopHistory(); herr != nil && err == nil {
		err = fmt.Errorf("loadgen: history: %w", herr)
	}
	if err != nil {
		return res, err
	}
	if err := r.writeOutputs(res); err != nil {
		return res, err
	}
	r.log.Info("loadgen: run done", "run", r.runName, "config", cfg.Config, "sent", res.Sent, "acked", res.Acked,
		"failed", res.Failed, "indeterminate", res.Indeterminate, "drained", res.Drained,
		"p99_ms", float64(res.Percentiles["publish-latency"].P99)/1000)
	return res, nil
}

// OutputTopics returns the output topic of each input topic of a transform run (input
// name + workloads.OutputTopicSuffix).
func OutputTopics(topics []string) []string {
	out := make([]string, len(topics))
	for i, t := range topics {
		out[i] = t + workloads.OutputTopicSuffix
	}
	return out
}

var topicSafe = regexp.MustCompile(`[^a-z0-9._-]+`)

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func (r *runner) readPayloadFile() []byte {
	path := r.cfg.PayloadPath()
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		r.log.Warn("loadgen: payload file unreadable; padding with zeros", "file", path, "err", err)
		return nil
	}
	return b
}

func (r *runner) writeHeader(topics, outputs []string) {
	h := RunHeader(&r.cfg, r.runName, topics, outputs, r.opts.Client)
	if r.hw != nil {
		h.Start = r.hw.Start().Format(time.RFC3339Nano)
	}
	// The header has process -1, as in the schema example of history/event.go.
	r.hist(&history.Event{Process: -1, Type: history.Info, F: history.FRun, Partition: -1, Offset: -1, Run: h})
}

// RunHeader is the history header of a run of c named runName: the settings that decide
// which guarantees apply and, in Params, the rest of the configuration as strings. Start is
// the current time. client names the run's security settings (never a secret); nil is
// plaintext.
func RunHeader(c *workloads.RunConfig, runName string, topics, outputs []string, client *clientconfig.Config) *history.Run {
	params := map[string]string{
		"workload": c.Name, "file": c.File, "batch_size": c.Producer.BatchSize.String(), "linger": c.Producer.Linger.String(),
		"compression": c.Producer.Compression, "message_size": c.MessageSize.String(),
		"producer_rate": strconv.FormatFloat(c.ProducerRate, 'f', -1, 64), "consumer_mode": c.Consumer.Mode,
		"partitions": strconv.Itoa(c.PartitionsPerTopic), "duration": c.Duration.String(), "warmup": c.Warmup.String(),
		"producers": strconv.Itoa(c.ProducersPerTopic), "subscriptions": strconv.Itoa(*c.SubscriptionsPerTopic),
		"consumers": strconv.Itoa(c.ConsumerPerSubscription), "brokers": strconv.Itoa(c.Brokers), "keys": keysParam(c),
		"static_membership": strconv.FormatBool(c.Consumer.StaticMembership), "session_timeout": c.Consumer.SessionTimeout.String(),
		"max_poll_interval": c.Consumer.MaxPollInterval.String(), "processing_time": c.Consumer.ProcessingTime.String(),
		"processing_overhead": c.Consumer.ProcessingOverhead.String(), "performance": strconv.FormatBool(c.Performance != nil),
		"abort_ratio": strconv.FormatFloat(c.Producer.AbortRatio, 'f', -1, 64),
	}
	for k, v := range c.TopicConfigStrings() {
		params["topic."+k] = v
	}
	if c.Chaos != nil {
		params["chaos"] = c.Chaos.String()
	}
	if len(outputs) > 0 {
		params["output_topics"] = strings.Join(outputs, ",")
	}
	if client != nil {
		params["security"] = client.String() // protocol, mechanism and user; never a secret
	}
	params["client_library"], params["client_version"] = DriverLibrary(c.Driver)
	flush, _ := strconv.ParseInt(c.TopicConfigStrings()["flush.messages"], 10, 64)
	return &history.Run{
		Version: history.Version, RunID: runName, Config: c.Config, Seed: c.Seed, Start: time.Now().Format(time.RFC3339Nano),
		Acks: c.Producer.Acks, Idempotent: c.Producer.Idempotence, Transactional: c.Producer.Transactional || c.Consumer.Commit == workloads.CommitTransactional, MaxInFlight: c.Producer.MaxInFlight, Retries: *c.Producer.Retries,
		IsolationLevel: c.Consumer.IsolationLevel, CommitMode: c.Consumer.Commit, ReplicationFactor: c.ReplicationFactor,
		MinInsyncReplicas: c.MinInsyncReplicas(), UncleanElection: c.TopicConfigStrings()["unclean.leader.election.enable"] == "true",
		FlushMessages: flush, Topics: topics, Driver: c.Driver, Params: params,
	}
}

// keysParam names a workload's record keys for the history header: "none" (no key), "nano"
// (a new key per record) or the number of distinct keys and their distribution, "100 zipf".
func keysParam(c *workloads.RunConfig) string {
	switch {
	case c.Keys != nil:
		return strconv.Itoa(c.Keys.Distinct) + " " + c.Keys.Distribution
	case c.KeyDistributor == "KEY_ROUND_ROBIN":
		return "10000 " + workloads.DistRoundRobin
	case c.KeyDistributor == "RANDOM_NANO":
		return "nano"
	}
	return "none"
}

// waitCatchUp waits until every group has read to the end offsets, or until positions and
// end offsets have not moved for catchUpIdle (read_committed consumers never get the
// transaction markers that end a partition, so they stop short of the end offset), or
// CatchUpTimeout.
func (r *runner) waitCatchUp(ctx context.Context, drv Driver, topics []string, groups []*positions) {
	if len(groups) == 0 {
		return
	}
	deadline := time.Now().Add(r.opts.CatchUpTimeout)
	perTopic := len(groups) / len(topics)
	lastBehind, lastChange := int64(-1), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		behind := int64(0)
		for ti, t := range topics {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			end, err := drv.EndOffsets(qctx, t, r.cfg.Consumer.IsolationLevel == "read_committed")
			cancel()
			if err != nil {
				behind = -1
				break
			}
			for _, g := range groups[ti*perTopic : (ti+1)*perTopic] {
				behind += g.lag(end)
			}
		}
		if behind == 0 {
			return
		}
		if behind != lastBehind {
			lastBehind, lastChange = behind, time.Now()
		} else if behind > 0 && time.Since(lastChange) >= catchUpIdle {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.log.Warn("loadgen: consumers did not catch up before the timeout", "timeout", r.opts.CatchUpTimeout)
}

// catchUpIdle ends the catch-up wait when nothing moved for this long.
const catchUpIdle = time.Second

func (r *runner) writeOutputs(res *rundir.Result) error {
	if r.opts.OutDir == "" {
		return nil
	}
	write := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("loadgen: %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(r.opts.OutDir, name), append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
		return nil
	}
	if err := write(rundir.ResultFile, res); err != nil {
		return err
	}
	return write(rundir.SeriesFile, res.Series)
}

// TopicNames returns the topics a run of cfg named runID writes: NAME-RUNID8-i for the
// workload's topics i = 0.., so runs never share a topic. The chaos schedule's "topic-i"
// refers to the i-th.
func TopicNames(cfg workloads.RunConfig, runID string) []string {
	topics := make([]string, cfg.Topics)
	base := topicSafe.ReplaceAllString(strings.ToLower(cfg.Name), "-")
	for i := range topics {
		topics[i] = fmt.Sprintf("%s-%s-%d", strings.Trim(base, "-"), runID[:min(8, len(runID))], i)
	}
	return topics
}
