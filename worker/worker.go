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
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/metrics"
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
)

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
	// MaxAttempts is the consumer's MaxDeliver: the last delivery of a
	// retryable failure is given up rather than redelivered. If zero, 5.
	MaxAttempts int
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
	metrics   *metrics.Metrics
}

// New returns a Worker.
func New(reg *registry.Client, model Describer, memory Memory, opts Options) *Worker {
	opts.defaults()
	if opts.Image.Accept == nil {
		opts.Image.Accept = model.Accepts()
	}
	w := &Worker{registry: reg, model: model, memory: memory, opts: opts, log: opts.Logger, reporter: opts.Reporter, metrics: opts.Metrics}
	w.gate = newGate(w.log, model)
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

// loop is one slot: wait until the model is usable, take one job, do it.
func (w *Worker) loop(ctx, workCtx context.Context, consumer jetstream.Consumer) error {
	for {
		if err := w.gate.Wait(ctx); err != nil {
			return nil
		}
		batch, err := consumer.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
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
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
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
	meta, _ := msg.Metadata()
	attempt := uint64(1)
	if meta != nil {
		attempt = meta.NumDelivered
	}
	if attempt > 1 {
		w.metrics.Redelivered()
	}
	jobs, err := w.jobs(msg)
	if err != nil {
		w.settle(msg, queue.Job{}, attempt, Result{}, fault.Permanent(err), time.Now())
		return
	}
	if len(jobs) == 0 {
		w.settle(msg, queue.Job{}, attempt, Result{}, fault.Skip("event makes no job"), time.Now())
		return
	}
	quiet := w.heartbeat(msg)
	defer quiet()
	start := time.Now()
	var res Result
	var job queue.Job
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
		if err != nil && !fault.Is(err, fault.KindSkip) && len(jobs) > 1 {
			break // the message is retried whole; jobs done are skipped then
		}
	}
	w.settle(msg, job, attempt, res, err, start)
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
func (w *Worker) settle(msg jetstream.Msg, job queue.Job, attempt uint64, res Result, err error, start time.Time) {
	log := w.log.With("repository", job.Repository, "digest", job.Digest, "tag", job.Tag, "attempt", attempt)
	kind, after := fault.Classify(err)
	report := queue.Result{JobID: job.ID(), JobSeq: seqOf(msg), Job: job, Attempts: int(attempt), At: time.Now().UTC(),
		Mode: string(res.Mode), Written: res.Written.Descriptor.Digest.String(), ModelCalls: res.ModelCalls}
	var ackErr error
	switch {
	case err == nil:
		log.Info("photo described", "mode", res.Mode, "written", res.Written.Descriptor.Digest,
			"photos", len(res.Descriptions), "model_calls", res.ModelCalls, "took", time.Since(start).Round(time.Millisecond).String(),
			"tag_moved", res.Written.TagMoved, "tag_moved_on", res.Written.TagMovedOn)
		report.Outcome = queue.Described
		ackErr = msg.Ack()
	case errors.Is(err, context.Canceled) || kind == fault.KindUnavailable:
		log.Info("job handed back to the queue (shutting down)", "err", err)
		w.metrics.Outcome("handed_back")
		if nerr := msg.Nak(); nerr != nil {
			log.Warn("could not hand the job back; JetStream will deliver it again after its ack wait", "err", nerr)
		}
		return
	case kind == fault.KindSkip:
		log.Debug("nothing to describe", "reason", err.Error())
		report.Outcome, report.Reason = queue.Skipped, err.Error()
		ackErr = msg.Ack()
	case kind == fault.KindPermanent || attempt >= uint64(w.opts.MaxAttempts):
		reason := err.Error()
		if kind != fault.KindPermanent {
			reason = fmt.Sprintf("gave up after %d attempts: %v", attempt, err)
		}
		report.Outcome, report.Reason = queue.Failed, reason
		if derr := w.dead(job, msg, attempt, reason); derr != nil {
			// Not stored as a dead letter: keep the job rather than lose it.
			log.Error("job failed, and the dead-letter stream did not take it; it will be delivered again", "err", err, "dead_letter_err", derr)
			w.metrics.Outcome("retried")
			_ = msg.NakWithDelay(w.backoff(attempt))
			return
		}
		log.Error("job failed; moved to the dead-letter stream (regscribe failed list)", "err", reason)
		ackErr = msg.TermWithReason(truncateReason(reason))
	default:
		delay := w.backoff(attempt)
		if after > delay {
			delay = after
		}
		log.Warn("job failed; will retry", "err", err, "retry_in", delay)
		w.metrics.Outcome("retried")
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("could not settle job message; JetStream will deliver it again", "err", nerr)
		}
		return
	}
	w.metrics.Outcome(string(report.Outcome))
	if ackErr != nil {
		log.Warn("could not settle job message; JetStream will deliver it again", "err", ackErr)
	}
	if w.reporter != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if rerr := w.reporter.Result(ctx, report); rerr != nil {
			log.Warn("could not publish the job's result", "err", rerr)
		}
	}
}

// dead stores the job as a dead letter (a malformed job keeps its raw data).
func (w *Worker) dead(job queue.Job, msg jetstream.Msg, attempt uint64, reason string) error {
	if w.reporter == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := queue.DeadLetter{Job: job, Error: reason, Attempts: int(attempt), FailedAt: time.Now().UTC(), JobSeq: seqOf(msg)}
	if job.Version == 0 {
		d.Error += " (raw job: " + truncateReason(string(msg.Data())) + ")"
	}
	return w.reporter.Dead(ctx, d)
}

// seqOf is the message's sequence in the job stream (0 if unknown).
func seqOf(msg jetstream.Msg) uint64 {
	if meta, err := msg.Metadata(); err == nil {
		return meta.Sequence.Stream
	}
	return 0
}

func truncateReason(s string) string {
	if len(s) > 512 {
		return s[:512] + "…"
	}
	return s
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
