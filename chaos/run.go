package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kchaos/kchaos/history"
)

// Env is what a chaos run needs.
type Env struct {
	// Seed seeds the schedule and every random choice; print it and put it in the run header.
	Seed int64
	// Duration is the length of the run from Start; every fault ends by then.
	Duration time.Duration
	// Driver makes faults happen; required.
	Driver Driver
	// Resolver reads the cluster when a fault starts; required.
	Resolver Resolver
	// History receives a fault event at each start and end; optional.
	History *history.Writer
	// RunDir, when set, gets the action journal (chaos-actions.jsonl) for `kchaos chaos heal`.
	RunDir string
	// Logger receives fault starts, ends and failures; default discards.
	Logger *slog.Logger
	// HealTimeout bounds healing at the end; default 60s.
	HealTimeout time.Duration
	// ResolveTimeout bounds the Metadata request made when a fault starts; default 5s.
	ResolveTimeout time.Duration
}

// Runner runs a schedule of faults against a cluster and heals it.
type Runner struct {
	env     Env
	acts    []Action
	reg     *Registry
	cancel  context.CancelFunc
	loopEnd chan struct{}
	sig     chan os.Signal

	mu       sync.Mutex // guards open, lastView, failures
	open     map[int64]*openFault
	lastView *ClusterView
	failures []error

	healOnce sync.Once
	healErr  error
}

// openFault is a started fault waiting for its end.
type openFault struct {
	act      Action
	resolved Resolved
	err      error
}

// Run schedules faults, runs them for env.Duration and heals everything before it returns,
// also when ctx is cancelled or the process gets SIGINT or SIGTERM. It returns what healing
// failed to undo; faults that could not be applied are in the history and the log.
func Run(ctx context.Context, faults []Fault, env Env) error {
	r, err := Start(ctx, faults, env)
	if err != nil {
		return err
	}
	return r.Wait()
}

// Start schedules faults and runs them in the background from now. Heal (or Wait) must be
// called. Cancelling ctx, SIGINT and SIGTERM make it heal at once; the caller still decides
// whether to exit.
func Start(ctx context.Context, faults []Fault, env Env) (*Runner, error) {
	if env.Driver == nil || env.Resolver == nil {
		return nil, errors.New("chaos: Env needs a Driver and a Resolver")
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if env.HealTimeout == 0 {
		env.HealTimeout = 60 * time.Second
	}
	if env.ResolveTimeout == 0 {
		env.ResolveTimeout = 5 * time.Second
	}
	r := &Runner{env: env, open: map[int64]*openFault{}, loopEnd: make(chan struct{})}
	view := View{Kinds: env.Driver.Kinds()}
	if m, ok := env.Driver.(interface{ Missing() map[Kind]string }); ok {
		view.Missing = m.Missing()
	}
	if len(faults) > 0 {
		cv, err := r.view(ctx)
		if err != nil {
			return nil, err
		}
		view.Brokers = len(cv.Brokers)
	}
	acts, err := Schedule(env.Seed, faults, max(env.Duration, 1), view)
	if len(faults) > 0 && err != nil {
		return nil, err
	}
	r.acts = acts
	if r.reg, err = NewRegistry(env.RunDir); err != nil {
		return nil, err
	}
	env.Logger.Info("chaos schedule", "seed", env.Seed, "faults", len(acts)/2, "duration", env.Duration)
	loopCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.sig = make(chan os.Signal, 1)
	signal.Notify(r.sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-r.sig:
			env.Logger.Warn("chaos: signal; healing", "signal", s)
			r.Heal()
		case <-ctx.Done():
			env.Logger.Warn("chaos: cancelled; healing", "err", ctx.Err())
			r.Heal()
		case <-r.loopEnd:
		}
	}()
	go r.loop(loopCtx)
	return r, nil
}

// Actions returns the schedule.
func (r *Runner) Actions() []Action { return r.acts }

// Failures returns the faults that could not be applied.
func (r *Runner) Failures() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.failures...)
}

// Pending returns the changes not undone yet.
func (r *Runner) Pending() []Record { return r.reg.Pending() }

// Wait waits for the schedule to finish (or ctx to be cancelled), then heals.
func (r *Runner) Wait() error {
	<-r.loopEnd
	return r.Heal()
}

// Heal stops the schedule, undoes every change still in place, records the end of every
// open fault and closes the journal. It is idempotent and safe to call from any goroutine.
func (r *Runner) Heal() error {
	r.healOnce.Do(func() {
		r.cancel()
		<-r.loopEnd
		signal.Stop(r.sig)
		ctx, cancel := context.WithTimeout(context.Background(), r.env.HealTimeout)
		defer cancel()
		start := time.Now()
		var errs []error
		r.mu.Lock()
		open := make([]*openFault, 0, len(r.open))
		for _, o := range r.open {
			open = append(open, o)
		}
		clear(r.open)
		r.mu.Unlock()
		for _, o := range open {
			err := r.reg.UndoFault(ctx, o.act.ID)
			errs = append(errs, err)
			r.record(o.act, PhaseEnd, o.resolved, errors.Join(o.err, err), time.Since(start))
		}
		errs = append(errs, r.reg.Heal(ctx), r.reg.Close())
		r.healErr = errors.Join(errs...)
		if r.healErr != nil {
			r.env.Logger.Error("chaos: heal incomplete", "err", r.healErr)
		}
	})
	return r.healErr
}

func (r *Runner) loop(ctx context.Context) {
	defer close(r.loopEnd)
	t0 := time.Now()
	for _, a := range r.acts {
		wait := time.Until(t0.Add(a.At.D()))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		if a.Phase == PhaseStart {
			r.start(ctx, a)
		} else {
			r.end(ctx, a)
		}
	}
}

// view reads the cluster, falling back to the last view read when the cluster cannot answer
// (a fault may have taken the resolver's brokers away).
func (r *Runner) view(ctx context.Context) (ClusterView, error) {
	vctx, cancel := context.WithTimeout(ctx, r.env.ResolveTimeout)
	defer cancel()
	v, err := r.env.Resolver.View(vctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.lastView != nil {
			r.env.Logger.Warn("chaos: metadata failed; using the last view", "err", err)
			return *r.lastView, nil
		}
		return ClusterView{}, err
	}
	r.lastView = &v
	return v, nil
}

func (r *Runner) start(ctx context.Context, a Action) {
	began := time.Now()
	o := &openFault{act: a}
	v, err := r.view(ctx)
	if err == nil {
		rng := rand.New(rand.NewPCG(uint64(a.Seed), uint64(a.ID)))
		o.resolved, err = Resolve(a.Fault, v, rng)
	}
	if err == nil {
		err = r.env.Driver.Apply(ctx, r.reg, a.ID, a.Fault, o.resolved)
	}
	o.err = err
	r.mu.Lock()
	r.open[a.ID] = o
	if err != nil {
		r.failures = append(r.failures, fmt.Errorf("chaos: fault %d (%s %s): %w", a.ID, a.Fault.Kind, a.Fault.Target, err))
	}
	r.mu.Unlock()
	r.record(a, PhaseStart, o.resolved, err, time.Since(began))
}

func (r *Runner) end(ctx context.Context, a Action) {
	r.mu.Lock()
	o, ok := r.open[a.ID]
	delete(r.open, a.ID)
	r.mu.Unlock()
	if !ok {
		return
	}
	began := time.Now()
	err := r.reg.UndoFault(ctx, a.ID)
	if err != nil {
		r.mu.Lock()
		r.failures = append(r.failures, err)
		r.mu.Unlock()
	}
	r.record(a, PhaseEnd, o.resolved, errors.Join(o.err, err), time.Since(began))
}

// record logs a fault phase and writes its history event. took is how long applying or
// undoing took.
func (r *Runner) record(a Action, ph Phase, res Resolved, err error, took time.Duration) {
	params := map[string]string{}
	for k, v := range a.Fault.Params {
		params[k] = v
	}
	if len(res.Pairs) > 0 {
		params["cut"] = res.describePairs()
	}
	if res.Clients {
		params["clients"] = "cut"
	}
	if ph == PhaseStart {
		params["for"] = a.Fault.For.String()
		params["seed"] = strconv.FormatInt(a.Seed, 10)
	}
	params["took"] = took.String()
	hf := &history.Fault{ID: a.ID, Phase: string(ph), Kind: string(a.Fault.Kind), Target: a.Fault.Target.String(), Nodes: res.Nodes, Params: params}
	attrs := []any{"id", a.ID, "kind", a.Fault.Kind, "target", a.Fault.Target.String(), "nodes", res.Nodes, "took", took}
	if err != nil {
		hf.Error = err.Error()
		r.env.Logger.Warn("chaos: fault "+string(ph)+" failed", append(attrs, "err", err)...)
	} else {
		r.env.Logger.Info("chaos: fault "+string(ph), attrs...)
	}
	if r.env.History != nil {
		r.env.History.Write(&history.Event{Process: history.ProcessNemesis, Type: history.Info, F: history.FFault,
			Partition: -1, Offset: -1, Fault: hf})
	}
}
