package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/outage"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/vision"
)

// Describer is a vision model.
type Describer interface {
	// Describe returns what the model sees in one image.
	Describe(ctx context.Context, img vision.Image) (vision.Description, error)
	// Model is provider/model, written into io.regscribe.model.
	Model() string
	// PromptDigest identifies the prompt in use (descriptions are remembered per prompt).
	PromptDigest() string
	// Accepts lists the image media types the model takes unconverted.
	Accepts() []string
}

// Outages hears when the model is unreachable (again while it lasts) and
// when it is back; *outage.Board is one.
type Outages interface {
	Down(ctx context.Context, model string, cause error) error
	Up(ctx context.Context, model string) error
}

var _ Outages = (*outage.Board)(nil)

// Reporter publishes how jobs ended and keeps the ones given up.
type Reporter interface {
	Result(ctx context.Context, r queue.Result) error
	Dead(ctx context.Context, d queue.DeadLetter) error
}

// Locker serialises writes to one photo's referrers across processes (a
// registry without the referrers API keeps them in one fallback index).
// Lock returns the context for the work under the lock: it ends when the
// lock is lost.
type Locker interface {
	Lock(ctx context.Context, name string) (held context.Context, unlock func(), err error)
}

// Checker is implemented by describers that can tell whether their model is
// ready; the worker uses it to notice when an unavailable model is back.
type Checker interface {
	Check(ctx context.Context) error
}

// Memory remembers descriptions per image blob, model and prompt.
type Memory interface {
	// Get returns the remembered description, if any.
	Get(ctx context.Context, k memo.Key) (vision.Description, bool, error)
	// Remember stores d unless one is stored already, and returns the one
	// stored (the first description of a photo wins).
	Remember(ctx context.Context, k memo.Key, d vision.Description) (vision.Description, error)
	// Replace stores d whatever was stored (a forced description).
	Replace(ctx context.Context, k memo.Key, d vision.Description) error
}

var (
	_ Describer = (*vision.Ollama)(nil)
	_ Checker   = (*vision.Ollama)(nil)
	_ Describer = (*vision.OpenAI)(nil)
	_ Checker   = (*vision.OpenAI)(nil)
	_ Memory    = (*memo.Store)(nil)
	_ Memory    = (*memo.Local)(nil)
	_ Reporter  = (*queue.Reporter)(nil)
	_ Locker    = (*lease.Leases)(nil)
	_ Ledger    = (*queue.Ledger)(nil)
)

// Ledger keeps, per job message (by stream sequence), what JetStream's
// delivery count does not say: hand-backs, the last error, a dead letter
// stored or still to store (see [queue.Record]).
type Ledger interface {
	// Get returns the record of the message stored at stored; ok is false
	// when there is none.
	Get(ctx context.Context, seq uint64, stored time.Time) (r queue.Record, ok bool, err error)
	Put(ctx context.Context, seq uint64, r queue.Record) error
	Forget(ctx context.Context, seq uint64) error
}

// Options configure a [Worker].
type Options struct {
	// Concurrency is the number of jobs in flight. If zero, 4.
	Concurrency int
	// MaxBlobBytes caps each image blob fetched. If zero, 50 MiB.
	MaxBlobBytes int64
	// Image limits for preparation; Accept is taken from the Describer.
	Image imageprep.Limits
	// MaxPrepareBytes bounds the bytes of image blobs fetched and not yet
	// prepared, across the jobs in flight; a larger blob waits until it has
	// the whole budget. If zero, 8 MiB.
	MaxPrepareBytes int64
	// MaxPrepares bounds the photos prepared (decoded, scaled, encoded) at
	// once: preparing is CPU-bound, and a 12 MP photo needs about 45 MB
	// while it is prepared. If zero, runtime.GOMAXPROCS(0).
	MaxPrepares int
	// AckWait of the consumer: the worker signals progress at a third of it.
	// If zero, 60 s.
	AckWait time.Duration
	// MaxAttempts is how many deliveries of a job may do its work: the
	// last of a retryable failure is given up (a dead letter) rather than
	// retried, and a delivery beyond it (the previous one's worker died, or
	// its dead letter could not be stored) is given up without doing the
	// work again. Deliveries handed back unworked (shutting down) are not
	// attempts when Ledger is set. If zero, 5.
	MaxAttempts int
	// Ledger records hand-backs and failures per job message. If nil, a
	// hand-back counts as an attempt.
	Ledger Ledger
	// Backoff lists the delays before the 2nd, 3rd, … delivery of a failed
	// job; the last entry repeats. If nil, 2s, 10s, 30s, 1m.
	Backoff []time.Duration
	// ShutdownTimeout bounds how long jobs in flight may take after Run's
	// context ends; the rest are handed back to the queue. If zero, 30 s.
	ShutdownTimeout time.Duration
	// Mode of write-back. If empty, ModeAuto.
	Mode Mode
	// Force describes photos again even when they have a description (the
	// model's own write-backs are still recognised and skipped).
	Force bool
	// Prune removes older regscribe referrers of a photo described again.
	Prune bool
	// NoImageDescription leaves org.opencontainers.image.description alone.
	// If false, an annotation-mode write-back also sets it to the description
	// when the manifest has none (or has regscribe's earlier one), and a
	// description referrer carries it too: registries' own pages (GHCR, zot)
	// show that key.
	NoImageDescription bool
	// Select decides which artifacts are described.
	Select Selection
	// Translate turns a message on a subject outside regscribe's own job
	// subjects (zot's raw events) into jobs. If nil, such messages are
	// dead letters.
	Translate func(subject string, data []byte) ([]queue.Job, error)
	// Locker serialises referrer writes per photo across worker processes.
	// If nil, they are serialised within this process only (by oras-go).
	Locker Locker
	// Reporter publishes results and dead letters. If nil, none are kept
	// (jobs given up are only logged).
	Reporter Reporter
	// Feed publishes the description events of jobs that end (what they
	// wrote, manifests gone), with the same care as their results. If nil,
	// none are published.
	Feed Feed
	// Outages receives the model's outages, for the gallery and `regscribe
	// status`. If nil, they are only logged.
	Outages Outages
	// Metrics records job outcomes and stage latencies. If nil, none.
	Metrics *metrics.Metrics
	// Logger for job outcomes. If nil, slog.Default().
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxBlobBytes <= 0 {
		o.MaxBlobBytes = 50 << 20
	}
	if o.MaxPrepareBytes <= 0 {
		o.MaxPrepareBytes = 8 << 20
	}
	if o.MaxPrepares <= 0 {
		o.MaxPrepares = runtime.GOMAXPROCS(0)
	}
	if o.AckWait <= 0 {
		o.AckWait = 60 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff == nil {
		o.Backoff = []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute}
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Mode == "" {
		o.Mode = ModeAuto
	}
}

// Worker describes photos named by jobs.
type Worker struct {
	registry  *registry.Client
	model     Describer
	memory    Memory
	opts      Options
	log       *slog.Logger
	gate      *gate
	preparing *preparing
	flights   singleflight.Group
	reporter  Reporter
	feed      Feed
	ledger    Ledger
	metrics   *metrics.Metrics
	// refusals are the manifests whose refusal this worker logged at info.
	refusals logged
}

// logged remembers the last manifests a worker logged something of, so
// that the several jobs of one push (by digest, then by tag) log it once.
type logged struct {
	mu    sync.Mutex
	seen  map[string]bool
	order []string
}

// loggedCap bounds what a [logged] remembers.
const loggedCap = 1024

// first reports whether key was not logged before, and remembers it.
func (l *logged) first(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[key] {
		return false
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if len(l.order) >= loggedCap {
		delete(l.seen, l.order[0])
		l.order = l.order[1:]
	}
	l.seen[key] = true
	l.order = append(l.order, key)
	return true
}

// New returns a Worker.
func New(reg *registry.Client, model Describer, memory Memory, opts Options) *Worker {
	opts.defaults()
	if opts.Image.Accept == nil {
		opts.Image.Accept = model.Accepts()
	}
	w := &Worker{registry: reg, model: model, memory: memory, opts: opts, log: opts.Logger, reporter: opts.Reporter, feed: opts.Feed, ledger: opts.Ledger, metrics: opts.Metrics}
	w.gate = newGate(w.log, model, opts.Outages)
	w.preparing = newPreparing(opts.MaxPrepareBytes, opts.MaxPrepares)
	return w
}

// Run takes jobs from consumer until ctx ends, then lets the jobs in flight
// finish within ShutdownTimeout and hands back the rest.
func (w *Worker) Run(ctx context.Context, consumer jetstream.Consumer) error {
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(w.opts.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelWork()
		case <-workCtx.Done():
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, w.opts.Concurrency)
	for range w.opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.loop(ctx, workCtx, consumer); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// fetchWait is how long one pull for a job waits on an idle queue. Pulls are
// long and ended early when the worker stops: a job the server hands to a
// pull just as the client stops waiting for it (a busy machine) is only
// delivered again after the ack wait, so the fewer pulls expire, the rarer
// that is.
const fetchWait = 30 * time.Second

// loop is one slot: wait until the model is usable, take one job, do it.
func (w *Worker) loop(ctx, workCtx context.Context, consumer jetstream.Consumer) error {
	for {
		if err := w.gate.Wait(ctx); err != nil {
			return nil
		}
		pull, endPull := context.WithTimeout(ctx, fetchWait)
		batch, err := consumer.Fetch(1, jetstream.FetchContext(pull))
		if err != nil {
			endPull()
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("fetching a job failed; trying again", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		for msg := range batch.Messages() {
			w.handle(ctx, workCtx, msg)
		}
		endPull()
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) &&
			!errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			w.log.Debug("fetch ended", "err", err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// handle runs one job message to its end, keeping it alive with InProgress
// while it runs and while it waits for an unavailable model. The job's work
// runs under work (which outlives stop by the shutdown timeout); waiting for
// the model ends with stop, so a stopping worker hands such jobs back at once.
func (w *Worker) handle(stop, work context.Context, msg jetstream.Msg) {
	d := w.delivery(msg)
	if d.delivered > 1 {
		w.metrics.Redelivered()
	}
	if r := d.rec.Result; r != nil {
		// The job ended before; only its result was not stored.
		log := w.log.With("repository", r.Job.Repository, "digest", r.Job.Digest, "tag", r.Job.Tag, "seq", d.seq)
		end := func() error { return w.ack(msg, log, d) }
		if r.Outcome == queue.Failed {
			end = func() error { return msg.TermWithReason(queue.Excerpt(r.Reason)) }
		}
		log.Info("job ended before; storing its result", "outcome", r.Outcome, "events", len(d.rec.Events))
		w.report(log, msg, d, *r, d.rec.Events, end)
		return
	}
	jobs, err := w.jobs(msg)
	if err != nil {
		w.settle(msg, queue.Job{}, d, Result{}, fault.Permanent(err), time.Now())
		return
	}
	if len(jobs) == 0 {
		w.settle(msg, queue.Job{}, d, Result{}, fault.Skip("event makes no job"), time.Now())
		return
	}
	if !strings.HasPrefix(msg.Subject(), queue.SubjectPrefix) && d.delivered == 1 {
		w.announce(work, jobs)
	}
	if d.rec.Dead || d.attempt > uint64(w.opts.MaxAttempts) {
		// Given up before: settle stores the dead letter (if not stored)
		// without doing the work again.
		w.settle(msg, jobs[0], d, Result{}, nil, time.Now())
		return
	}
	quiet := w.heartbeat(msg)
	defer quiet()
	start := time.Now()
	var res Result
	var job queue.Job
	var events []feed.Event // of every job of the message that wrote something
	for _, job = range jobs {
		for {
			res, err = w.Process(work, job)
			if !fault.Is(err, fault.KindUnavailable) {
				break
			}
			w.gate.Down(err)
			if w.gate.Wait(stop) != nil {
				break
			}
		}
		if err == nil || fault.Is(err, fault.KindSkip) {
			events = append(events, res.Events...) // a refusal's too
		}
		if err != nil && !fault.Is(err, fault.KindSkip) && len(jobs) > 1 {
			break // the message is retried whole; jobs done are skipped then
		}
	}
	res.Events = events
	w.settle(msg, job, d, res, err, start)
}

// delivery is one delivery of a job message.
type delivery struct {
	seq       uint64    // the message's sequence in the job stream (0 if unknown)
	stored    time.Time // the message's time in the job stream
	delivered uint64    // JetStream's delivery count, this one included
	// attempt counts the deliveries that could do the work, this one
	// included: delivered less the hand-backs.
	attempt uint64
	rec     queue.Record // the ledger's record (a fresh one if none)
	known   bool         // rec was in the ledger
}

// delivery reads a message's delivery count and, on a redelivery, its
// ledger record. A ledger that cannot be read counts every delivery.
func (w *Worker) delivery(msg jetstream.Msg) delivery {
	d := delivery{delivered: 1}
	meta, err := msg.Metadata()
	if err == nil {
		d.seq, d.stored, d.delivered = meta.Sequence.Stream, meta.Timestamp, meta.NumDelivered
	}
	d.rec.Stored = d.stored
	if d.delivered > 1 && d.seq != 0 && w.ledger != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rec, ok, err := w.ledger.Get(ctx, d.seq, d.stored)
		if err != nil {
			w.log.Warn("could not read the job's record; counting every delivery as an attempt", "seq", d.seq, "err", err)
		}
		d.rec, d.known = rec, ok
	}
	d.attempt = d.delivered - min(d.rec.HandedBack, d.delivered-1)
	return d
}

// givenUp is why a delivery beyond MaxAttempts gives the job up.
func (d delivery) givenUp() string {
	switch {
	case d.rec.GiveUp != "":
		return d.rec.GiveUp
	case d.rec.LastError != "" && d.rec.ErrorDelivery == d.delivered-1:
		return fmt.Sprintf("gave up after %d attempts: %s", d.attempt-1, d.rec.LastError)
	}
	reason := fmt.Sprintf("delivered %d times without finishing: the worker handling it stopped (killed, out of memory?)", d.attempt-1)
	if d.rec.LastError != "" {
		reason += "; the last error before: " + d.rec.LastError
	}
	return reason
}

// jobs reads the jobs a message carries: a job, or an event on an extra
// subject that Translate turns into jobs.
func (w *Worker) jobs(msg jetstream.Msg) ([]queue.Job, error) {
	if !strings.HasPrefix(msg.Subject(), queue.SubjectPrefix) {
		if w.opts.Translate == nil {
			return nil, fmt.Errorf("message on %s: no translation for this subject", msg.Subject())
		}
		jobs, err := w.opts.Translate(msg.Subject(), msg.Data())
		if err != nil {
			return nil, fmt.Errorf("malformed event on %s: %w", msg.Subject(), err)
		}
		return jobs, nil
	}
	job, err := queue.ParseJob(msg.Data())
	if err != nil {
		return nil, fmt.Errorf("malformed job: %w", err)
	}
	return []queue.Job{job}, nil
}

// settle is the one place that decides what happens to a job message.
func (w *Worker) settle(msg jetstream.Msg, job queue.Job, d delivery, res Result, err error, start time.Time) {
	log := w.log.With("repository", job.Repository, "digest", job.Digest, "tag", job.Tag, "attempt", d.attempt, "seq", d.seq)
	kind, after := fault.Classify(err)
	report := queue.Result{JobID: job.ID(), JobSeq: d.seq, Job: job, Attempts: int(d.attempt), At: time.Now().UTC(),
		Mode: string(res.Mode), Written: res.Written.Descriptor.Digest.String(), ModelCalls: res.ModelCalls}
	// end settles a job that ended: it runs after the result is stored, so
	// a worker that stops in between leaves a job that is delivered again
	// and reports the same result id (one result per job message).
	var end func() error
	// events are published with the result.
	var events []feed.Event
	switch {
	case d.rec.Dead:
		// Given up by a worker that stopped before it stored the result
		// (one that stored it kept it in the record, and handle ended the
		// job with it): store one, so the job ends seen.
		reason := "given up (its dead letter is stored)"
		if d.rec.GiveUp != "" {
			reason = d.rec.GiveUp
		}
		log.Info("job already given up (its dead letter is stored); storing its result and ending it")
		report.Outcome, report.Reason, report.Attempts = queue.Failed, reason, int(min(d.attempt-1, uint64(w.opts.MaxAttempts)))
		events = manifestEvents(feed.Failed, job, reason)
		end = func() error { return msg.TermWithReason("dead letter stored") }
	case err == nil && d.attempt > uint64(w.opts.MaxAttempts):
		reason := d.givenUp()
		report.Outcome, report.Reason, report.Attempts = queue.Failed, reason, int(d.attempt-1)
		if !w.giveUp(log, msg, job, d, reason, report) {
			return
		}
		events = manifestEvents(feed.Failed, job, reason)
		end = func() error { return msg.TermWithReason(queue.Excerpt(reason)) }
	case err == nil && res.Removed:
		log.Info("manifest gone; removed from search")
		report.Outcome, events = queue.Removed, res.Events
		end = func() error { return w.ack(msg, log, d) }
	case err == nil:
		log.Info("photo described", "mode", res.Mode, "written", res.Written.Descriptor.Digest,
			"photos", len(res.Descriptions), "model_calls", res.ModelCalls, "took", time.Since(start).Round(time.Millisecond).String(),
			"tag_moved", res.Written.TagMoved, "tag_moved_on", res.Written.TagMovedOn)
		report.Outcome, events = queue.Described, res.Events
		end = func() error { return w.ack(msg, log, d) }
	case errors.Is(err, context.Canceled) || kind == fault.KindUnavailable:
		log.Info("job handed back to the queue (shutting down)", "err", err)
		w.metrics.Outcome("handed_back")
		d.rec.HandedBack++
		d.rec.RetryAt = time.Time{}
		w.keep(log, d, "the hand-back will count as an attempt")
		if nerr := msg.Nak(); nerr != nil {
			log.Warn("could not hand the job back; JetStream will deliver it again after its ack wait", "err", nerr)
		}
		return
	case kind == fault.KindSkip:
		// Other jobs of the message may have written descriptions.
		report.Outcome, report.Reason, events = queue.Skipped, err.Error(), res.Events
		if r := (*Refusal)(nil); errors.As(err, &r) {
			// A person pushed something to be described: say it, once per
			// manifest (a push makes a job by digest and one by tag).
			level := slog.LevelDebug
			if w.refusals.first(job.Registry + "/" + job.Repository + "@" + r.Manifest.Digest.String()) {
				level = slog.LevelInfo
			}
			log.Log(context.Background(), level, "not an image; nothing described", "manifest", r.Manifest.Digest, "reason", r.Reason)
			report.Outcome, report.Reason = queue.Refused, r.Reason
		} else {
			log.Debug("nothing to describe", "reason", err.Error())
			if len(events) == 0 && job.Event != "" && !errors.Is(err, errSaidHere) {
				// The push the notifier announced (queued) ends here:
				// nothing of it shows. (A manifest this model described
				// shows as described.)
				events = manifestEvents(feed.Skipped, job, err.Error())
			}
		}
		end = func() error { return w.ack(msg, log, d) }
	case kind == fault.KindPermanent || d.attempt >= uint64(w.opts.MaxAttempts):
		reason := err.Error()
		if kind != fault.KindPermanent {
			reason = fmt.Sprintf("gave up after %d attempts: %v", d.attempt, err)
		}
		report.Outcome, report.Reason = queue.Failed, reason
		if !w.giveUp(log, msg, job, d, reason, report) {
			return
		}
		events = manifestEvents(feed.Failed, job, reason)
		end = func() error { return msg.TermWithReason(queue.Excerpt(reason)) }
	default:
		delay := w.backoff(d.attempt)
		if after > delay {
			delay = after
		}
		log.Warn("job failed; will retry", "err", err, "retry_in", delay)
		w.metrics.Outcome("retried")
		d.rec.LastError, d.rec.ErrorDelivery, d.rec.RetryAt = queue.Excerpt(err.Error()), d.delivered, time.Now().Add(delay)
		w.keep(log, d, "")
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("could not settle job message; JetStream will deliver it again", "err", nerr)
		}
		return
	}
	w.metrics.Outcome(string(report.Outcome))
	w.report(log, msg, d, report, events, end)
}

// announce puts the photos of jobs no notifier announced (zot's events
// taken from NATS) in the gallery as waiting, as the notifier does for the
// pushes it queues. A lost announcement only means the photo shows once
// its job ends.
func (w *Worker) announce(ctx context.Context, jobs []queue.Job) {
	if w.opts.Feed == nil {
		return
	}
	for _, job := range jobs {
		if job.Correction != nil {
			continue
		}
		for _, e := range manifestEvents(feed.Queued, job, "") {
			e.Registry = w.registry.Canonical(e.Registry)
			if _, err := w.opts.Feed.Publish(ctx, e, "queued-"+job.ID()); err != nil {
				w.log.Warn("could not announce the push to the gallery; its photo shows once described",
					"repository", job.Repository, "digest", job.Digest, "err", err)
			}
		}
	}
}

// manifestEvents is what the description stream learns of a job that
// ended without a description: its manifest failed (given up), or was
// skipped (nothing to describe), and why; the gallery shows a failure on
// the photo and forgets a skipped push. A job that names no manifest, or
// removes one, says nothing there.
func manifestEvents(kind feed.Kind, job queue.Job, reason string) []feed.Event {
	if job.Digest == "" || job.Deleted || job.Registry == "" {
		return nil
	}
	var tags []string
	if job.Tag != "" {
		tags = []string{job.Tag}
	}
	// At is when the push was announced: the photo keeps its place in the
	// gallery, also in an index rebuilt without the announcement.
	return []feed.Event{{Kind: kind, Registry: job.Registry, Repository: job.Repository, Digest: job.Digest, Tags: tags,
		Reason: queue.Excerpt(reason), At: job.Received.UTC()}}
}

// report publishes the description events of a job that ended and stores
// its result, then ends its message with end. When either cannot be
// stored, the job is kept: its message is put back with a delay and the
// result and events recorded, so the next delivery publishes them without
// doing the work again (an event stored the first time counts once: its
// message id is the job message's sequence and its place among the events).
func (w *Worker) report(log *slog.Logger, msg jetstream.Msg, d delivery, report queue.Result, events []feed.Event, end func() error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.publish(ctx, d, report, events); err != nil {
		if w.ledger == nil || d.seq == 0 {
			log.Warn("could not store the job's result or description events", "err", err)
		} else {
			delay := w.backoff(d.attempt)
			log.Warn("could not store the job's result or description events; the job is kept and its next delivery stores them", "err", err, "retry_in", delay)
			d.rec.Result, d.rec.Events, d.rec.RetryAt = &report, events, time.Now().Add(delay)
			w.keep(log, d, "the job runs again")
			if nerr := msg.NakWithDelay(delay); nerr != nil {
				log.Warn("could not settle job message; JetStream will deliver it again", "err", nerr)
			}
			return
		}
	}
	if err := end(); err != nil {
		log.Warn("could not settle job message; JetStream will deliver it again", "err", err)
	}
}

// publish puts a job's description events on the description stream, in
// order, then its result on the result stream.
func (w *Worker) publish(ctx context.Context, d delivery, report queue.Result, events []feed.Event) error {
	if w.feed != nil {
		for n, e := range events {
			id := ""
			if d.seq != 0 {
				id = feed.JobID(d.seq, n)
			}
			var err error
			if fills(e) {
				_, err = w.feed.Fill(ctx, e, id)
			} else {
				_, err = w.feed.Publish(ctx, e, id)
			}
			if err != nil {
				return err
			}
		}
	}
	if w.reporter == nil {
		return nil
	}
	return w.reporter.Result(ctx, report)
}

// ack acknowledges a job that ended well and waits for JetStream to confirm
// it, then forgets the job's record: an acknowledgement lost on the way (a
// NATS restart) is noticed, and the record stays for the redelivery.
func (w *Worker) ack(msg jetstream.Msg, log *slog.Logger, d delivery) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		return err
	}
	w.forget(log, d)
	return nil
}

// giveUp stores the job's dead letter and records that it is stored, with
// the job's failed result: a worker that stops before it stores the result
// leaves it to the next delivery. When the dead-letter stream does not take
// it, the job is kept: put back with a delay, its next delivery tries the
// dead letter again without the work.
func (w *Worker) giveUp(log *slog.Logger, msg jetstream.Msg, job queue.Job, d delivery, reason string, report queue.Result) (stored bool) {
	if derr := w.dead(job, msg, d, reason); derr != nil {
		log.Error("job failed, and the dead-letter stream did not take it; it will be delivered again", "err", reason, "dead_letter_err", derr)
		w.metrics.Outcome("retried")
		delay := w.backoff(d.attempt)
		d.rec.GiveUp, d.rec.RetryAt = reason, time.Now().Add(delay)
		w.keep(log, d, "")
		_ = msg.NakWithDelay(delay)
		return false
	}
	log.Error("job failed; moved to the dead-letter stream (regscribe failed list)", "err", reason)
	d.rec.Dead, d.rec.RetryAt, d.rec.Result = true, time.Time{}, &report
	w.keep(log, d, "")
	return true
}

// keep stores the delivery's ledger record; cost says what a failure means.
func (w *Worker) keep(log *slog.Logger, d delivery, cost string) {
	if w.ledger == nil || d.seq == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.ledger.Put(ctx, d.seq, d.rec); err != nil {
		log.Warn("could not record the job's delivery", "err", err, "so", cost)
	}
}

// forget removes the record of a job that ended well.
func (w *Worker) forget(log *slog.Logger, d delivery) {
	if w.ledger == nil || !d.known {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.ledger.Forget(ctx, d.seq); err != nil {
		log.Debug("could not remove the job's record; it expires", "err", err)
	}
}

// dead stores the job as a dead letter (a malformed job keeps its raw data).
func (w *Worker) dead(job queue.Job, msg jetstream.Msg, d delivery, reason string) error {
	if w.reporter == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	attempts := d.attempt
	if attempts > uint64(w.opts.MaxAttempts) {
		attempts-- // this delivery did no work
	}
	dl := queue.DeadLetter{Job: job, Error: reason, Attempts: int(attempts), FailedAt: time.Now().UTC(), JobSeq: d.seq}
	if job.Version == 0 {
		dl.Error += " (raw job: " + queue.Excerpt(string(msg.Data())) + ")"
	}
	return w.reporter.Dead(ctx, dl)
}

func (w *Worker) backoff(attempt uint64) time.Duration {
	i := int(attempt) - 1
	if i >= len(w.opts.Backoff) {
		i = len(w.opts.Backoff) - 1
	}
	if i < 0 {
		return 0
	}
	return w.opts.Backoff[i]
}

// heartbeat tells JetStream the job is alive every third of AckWait.
func (w *Worker) heartbeat(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(w.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
