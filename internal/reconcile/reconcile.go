package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/reprocess"
)

// Source is the Job.Source of the jobs a sweep queues (their subject is
// regscribe.jobs.reconcile).
const Source = "reconcile"

// LeaseName is the lease every sweep holds: one sweep at a time across
// every worker process.
const LeaseName = "reconcile"

// Locker hands out leases held across processes (package lease).
type Locker interface {
	Lock(ctx context.Context, name string) (held context.Context, unlock func(), err error)
}

// Target is one registry to sweep.
type Target struct {
	// Registry is host[:port], a registry the client may reach.
	Registry string
	// Every is the time between two sweeps of the registry by any process.
	// If zero, the registry is swept once when [Reconciler.Run] starts
	// (a registry that retries its notifications and loses them only when
	// it stops with regscribe, as `regscribe up`'s embedded one).
	Every time.Duration
}

// Options configure [New].
type Options struct {
	// Targets are the registries to sweep.
	Targets []Target
	// Model is provider/model: a photo it (or a person) described is left alone. Required.
	Model string
	// Repositories are REGSCRIBE_REPOSITORIES: the names among them (globs
	// without wildcards) are swept on a registry whose catalog API is
	// missing or lists nothing.
	Repositories []string
	// Include, if set, says whether a repository is to be described (the
	// workers' selection): the others are not swept.
	Include func(repository string) bool
	// Referrer is true when the workers write referrers (REGSCRIBE_MODE
	// referrer): see reprocess.RunOptions.Referrer.
	Referrer bool
	// Concurrency bounds the registry requests in flight. If zero, 4.
	Concurrency int
	// Replicas of the bucket. If zero, 1.
	Replicas int
	// Locker serialises sweeps across processes. Required by [Reconciler.Run].
	Locker Locker
	// Tick is how often Run looks at the schedule. If zero, the shortest
	// Every (and FirstRetry), at most a minute.
	Tick time.Duration
	// FirstRetry is how long after a failed sweep the registry is swept
	// again; each further failure in a row doubles it, up to the target's
	// Every (an hour for a target swept once at start). If zero, 30 s.
	FirstRetry time.Duration
	// Metrics, if set, records each sweep (regscribe_reconcile_*).
	Metrics *metrics.Metrics
	// Logger, if nil, slog.Default().
	Logger *slog.Logger
}

// Reconciler sweeps registries.
type Reconciler struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	client *registry.Client
	opts   Options
	log    *slog.Logger

	mu sync.Mutex
	// warned are the registries whose missing catalog was logged.
	warned map[string]bool
}

// New opens the reconcile bucket. client reaches the registries (see
// [NewClient] for one whose request rate is bounded).
func New(ctx context.Context, js jetstream.JetStream, client *registry.Client, opts Options) (*Reconciler, error) {
	if opts.Model == "" {
		return nil, errors.New("reconcile: no model to check descriptions against")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FirstRetry <= 0 {
		opts.FirstRetry = DefaultFirstRetry
	}
	if opts.Tick <= 0 {
		opts.Tick = min(time.Minute, opts.FirstRetry)
		for _, t := range opts.Targets {
			if t.Every > 0 {
				opts.Tick = min(opts.Tick, t.Every)
			}
		}
	}
	kv, err := openBucket(ctx, js, opts.Replicas)
	if err != nil {
		return nil, err
	}
	return &Reconciler{js: js, kv: kv, client: client, opts: opts, log: opts.Logger, warned: map[string]bool{}}, nil
}

// Run sweeps each target when it is due, under the lease, until ctx ends.
// A registry is due when no process swept it within its Every (a target
// without Every: once, when Run starts). A failed sweep is logged, counted
// and recorded, and the registry is swept again after a backoff (see
// [Options.FirstRetry]) rather than a whole interval later.
func (r *Reconciler) Run(ctx context.Context) {
	if r.opts.Locker == nil {
		r.log.Error("reconcile: no lease to hold: not sweeping")
		return
	}
	once := map[string]bool{}
	for {
		for _, t := range r.opts.Targets {
			if t.Every == 0 && once[t.Registry] {
				continue
			}
			if r.maybeSweep(ctx, t) && t.Every == 0 {
				once[t.Registry] = true
			}
			if ctx.Err() != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.opts.Tick):
		}
	}
}

// maybeSweep sweeps t if it is due and the lease is free; it reports
// whether it swept the registry without error (what ends the tries of a
// target swept once at start).
func (r *Reconciler) maybeSweep(ctx context.Context, t Target) bool {
	if !r.due(ctx, t) {
		return false
	}
	held, unlock, ok := r.tryLock(ctx)
	if !ok {
		return false // another process sweeps: try at the next tick
	}
	defer unlock()
	// Under the lease, the record is the truth: another process may have
	// swept while this one waited.
	if !r.due(held, t) {
		return false
	}
	_, err := r.Sweep(held, t.Registry)
	return err == nil
}

// due reports whether t's last sweep is older than its interval or, when
// it failed, than its retry delay. A target without Every is always due
// unless its last sweep failed within the retry delay.
func (r *Reconciler) due(ctx context.Context, t Target) bool {
	last, err := lastSweep(ctx, r.kv, t.Registry)
	if err != nil {
		r.log.Warn("reconcile: cannot read the last sweep; sweeping", "registry", t.Registry, "err", err)
		return true
	}
	if last.Error != "" {
		return time.Since(last.Ended) >= retryDelay(last.Failures, r.opts.FirstRetry, t.Every)
	}
	return t.Every == 0 || last.Started.IsZero() || time.Since(last.Started) >= t.Every
}

// DefaultFirstRetry is the delay before a failed sweep is tried again when
// [Options.FirstRetry] is zero.
const DefaultFirstRetry = 30 * time.Second

// retryDelay is how long to wait after the failures-th failed sweep in a
// row: first, doubled for each failure after the first, at most every (an
// hour when every is zero).
func retryDelay(failures int, first, every time.Duration) time.Duration {
	limit := every
	if limit <= 0 {
		limit = time.Hour
	}
	d := first
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// tryLock takes the sweep lease if it is free within a second.
func (r *Reconciler) tryLock(ctx context.Context) (context.Context, func(), bool) {
	lctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(time.Second, cancel)
	held, unlock, err := r.opts.Locker.Lock(lctx, LeaseName)
	if !timer.Stop() || err != nil {
		// Not taken in time (or taken just as the wait ended: give it back).
		if err == nil {
			unlock()
		}
		cancel()
		return nil, nil, false
	}
	return held, func() { unlock(); cancel() }, true
}

// Sweep sweeps one registry now (whoever else sweeps: [Reconciler.Run]
// holds the lease around it), records the sweep in the bucket, logs and
// counts it.
func (r *Reconciler) Sweep(ctx context.Context, host string) (Sweep, error) {
	s := Sweep{Registry: strings.ToLower(host), Started: time.Now().UTC()}
	items, err := r.sweep(ctx, s.Registry)
	s.Ended = time.Now().UTC()
	s.Counts = reprocess.Summarize(items)
	if err != nil {
		s.Error = err.Error()
		s.Failures = 1
		if prev, perr := lastSweep(context.WithoutCancel(ctx), r.kv, s.Registry); perr == nil && prev.Error != "" {
			s.Failures = prev.Failures + 1
		}
		if ctx.Err() == nil { // a sweep stopped by shutdown is recorded, not counted
			r.opts.Metrics.SweepFailed(s.Registry)
		}
	}
	r.opts.Metrics.Swept(s.Registry, s.Counts.Tags, s.Counts.Unchanged, s.Counts.Queued, s.Took(), s.Ended)
	if b, merr := json.Marshal(s); merr == nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if _, perr := r.kv.Put(wctx, sweepKey(s.Registry), b); perr != nil {
			r.log.Warn("reconcile: cannot record the sweep", "registry", s.Registry, "err", perr)
		}
		cancel()
	}
	c := s.Counts
	attrs := []any{"registry", s.Registry, "tags", c.Tags, "unchanged", c.Unchanged, "manifests", c.Manifests,
		"queued", c.Queued, "already_queued", c.AlreadyQueued, "failed_before", c.FailedBefore,
		"errors", c.Errors, "took", s.Took().Round(time.Millisecond)}
	switch {
	case err != nil:
		attrs = append(attrs, "failures_in_a_row", s.Failures, "retry_in", retryDelay(s.Failures, r.opts.FirstRetry, r.every(s.Registry)))
		r.log.Warn("reconcile sweep failed: "+err.Error(), attrs...)
	case c.Queued > 0:
		r.log.Warn(fmt.Sprintf("reconcile sweep of %s caught %d photos no job was queued for: their notification never reached regscribe (or regscribe was down when they were pushed). "+
			"If this repeats, the registry's notifications are not arriving: check the notification endpoint and token in the registry's configuration, "+
			"or whether the registry retries its notifications at all (README, registry table)", s.Registry, c.Queued), attrs...)
	default:
		r.log.Info("reconcile sweep", attrs...)
	}
	return s, err
}

// every is the interval of the target for host (zero when none).
func (r *Reconciler) every(host string) time.Duration {
	for _, t := range r.opts.Targets {
		if strings.EqualFold(t.Registry, host) {
			return t.Every
		}
	}
	return 0
}

// sweep plans and queues, as `regscribe reprocess --missing --all` does,
// with the memory of the last sweep.
func (r *Reconciler) sweep(ctx context.Context, host string) ([]reprocess.Item, error) {
	regKey := registryKey(host)
	known, err := load(ctx, r.kv, regKey)
	if err != nil {
		return nil, err
	}
	repos, err := r.repositories(ctx, host)
	if err != nil || len(repos) == 0 {
		return nil, err
	}
	items, err := reprocess.Plan(ctx, r.client, reprocess.PlanOptions{
		Registry: host, Repositories: repos, Model: r.opts.Model, Concurrency: r.opts.Concurrency,
		Settled: func(repository, tag, digest string) bool {
			st, ok := known[tagKey(regKey, repository, tag)]
			return ok && st.Digest == digest && st.settled(r.opts.Model)
		},
	})
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		// A file whose notification was lost and that holds no photo: said
		// once (its tag is settled now), as a worker's job says it; Run
		// puts the refusal on the description stream.
		if it.Refused {
			r.log.Info("not an image; nothing described", "registry", host, "repository", it.Repository,
				"manifest", it.Digest, "tags", it.Tags, "reason", it.Reason)
		}
	}
	dead, err := queue.DeadLetters(ctx, r.js)
	if err != nil {
		return items, err
	}
	reprocess.ExcludeFailed(items, dead)
	runErr := reprocess.Run(ctx, r.js, items, reprocess.RunOptions{
		Batch: Source + "-" + reprocess.NewBatch(), Source: Source, Referrer: r.opts.Referrer,
	})
	// Remember what was decided even when publishing stopped part way:
	// photos not queued keep status ToQueue, which is not settled.
	if err := remember(context.WithoutCancel(ctx), r.kv, regKey, r.opts.Model, known, items); err != nil {
		return items, errors.Join(runErr, err)
	}
	return items, runErr
}

// repositories lists what to sweep: the catalog, or where a registry has
// none (or it lists nothing) the repository names configured, less the
// repositories not selected.
func (r *Reconciler) repositories(ctx context.Context, host string) ([]string, error) {
	repos, err := reprocess.Catalog(ctx, r.client, host, 0)
	noCatalog := errors.Is(err, reprocess.ErrNoCatalog)
	if err != nil && !noCatalog {
		return nil, err
	}
	if len(repos) == 0 {
		repos = names(r.opts.Repositories)
		if len(repos) == 0 {
			r.mu.Lock()
			first := !r.warned[host]
			r.warned[host] = true
			r.mu.Unlock()
			switch {
			case !first:
			case noCatalog:
				// Only a person can fix this: say so once, loudly.
				r.log.Warn("reconcile: the registry has no catalog API and REGSCRIBE_REPOSITORIES names no repository (globs cannot be listed): nothing to sweep", "registry", host)
			default:
				// An empty registry (a fresh `regscribe up`) is no fault.
				r.log.Info("reconcile: the registry holds no repository yet: nothing to sweep", "registry", host)
			}
			return nil, nil
		}
	}
	var out []string
	for _, repo := range repos {
		if r.opts.Include == nil || r.opts.Include(repo) {
			out = append(out, repo)
		}
	}
	return out, nil
}

// names are the globs that name one repository (no wildcard).
func names(globs []string) []string {
	var out []string
	for _, g := range globs {
		if g = strings.TrimSpace(g); g != "" && !strings.ContainsAny(g, `*?[\`) {
			out = append(out, g)
		}
	}
	return out
}

// String describes a target for the log.
func (t Target) String() string {
	if t.Every == 0 {
		return t.Registry + " (once at start)"
	}
	return fmt.Sprintf("%s (every %s)", t.Registry, t.Every)
}
