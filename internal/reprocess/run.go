package reprocess

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
)

// Source is the Job.Source of reprocess jobs (their subject is regscribe.jobs.reprocess).
const Source = "reprocess"

// NewBatch returns a batch id for one run: its UTC start time and random
// hex, "20261127T204107-9f3a11c2" (sortable, and a valid subject token).
func NewBatch() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// RunOptions configure [Run].
type RunOptions struct {
	// Batch id of the run. Required (see [NewBatch]).
	Batch string
	// Source is the Job.Source of the jobs (and so the last token of their
	// subject). If empty, [Source].
	Source string
	// Wait for every queued job's result (or ctx's end). Without it, Run
	// returns once the jobs are stored.
	Wait bool
	// Referrer is true when the workers write referrers (REGSCRIBE_MODE
	// referrer). A referrer describes a photo for all its tags, so each
	// photo gets one job. An annotation-mode write-back moves only the tag
	// its job names: each other tag of the photo gets a job too, which finds
	// the description remembered and moves that tag. When waiting, those
	// jobs are queued once the photo's result says it was written as an
	// annotation (whatever Referrer says); otherwise at once, after every
	// photo's first job, unless Referrer is set.
	Referrer bool
	// PublishSize is how many jobs are published before their
	// acknowledgements are awaited. If zero, 256.
	PublishSize int
	// IdleGrace: when the job queue has had nothing pending or in flight
	// for this long and results are still missing, they are taken as lost
	// (a worker stopped between acknowledging a job and reporting it, which
	// it retries for about 15 s), so waiting ends. If zero, 30 s.
	IdleGrace time.Duration
	// OnProgress, if set, is called (from Run's goroutine) after the jobs
	// are queued and each time a photo's jobs have all ended.
	OnProgress func(Progress)
}

// Progress is the state of a run. Item is the photo that just finished
// (nil for the event after queueing).
type Progress struct {
	Item      *Item
	Queued    int
	Described int
	Skipped   int
	Failed    int
}

// Done is the number of queued photos whose jobs all ended.
func (p Progress) Done() int { return p.Described + p.Skipped + p.Failed }

// ErrResultsLost is returned when waiting ended because the queue was idle
// with results still missing.
var ErrResultsLost = errors.New("results missing while the job queue is idle")

// Run queues a job for every item with status ToQueue (Status becomes
// Queued, or AlreadyQueued for a duplicate), and with Wait sets each
// Queued item's Outcome from the results the workers publish. It subscribes
// to the batch's results before publishing the first job. It returns ctx's
// error when waiting was cut short (items without Outcome are still
// running), [ErrResultsLost], or a publishing error (items not published
// keep status ToQueue).
//
// Before any job, it puts the descriptions the plan found (Item.Found,
// PlanOptions.Backfill) on the description stream (package feed), one
// [feed.Found] event per manifest and describer where the stream lacks it
// or holds an older one ([feed.Publisher.Fill]: a description a worker
// wrote meanwhile is never buried), and counts those stored in
// Item.Indexed. Publishing before the jobs makes a description a job writes
// later newer on the stream than the one it replaces. It puts the refusal
// of each Refused item there too. The stream must exist
// ([feed.EnsureStream]).
func Run(ctx context.Context, js jetstream.JetStream, items []Item, opts RunOptions) error {
	if opts.Batch == "" {
		return errors.New("reprocess: no batch id")
	}
	if opts.PublishSize <= 0 {
		opts.PublishSize = 256
	}
	if opts.Source == "" {
		opts.Source = Source
	}
	if opts.IdleGrace <= 0 {
		opts.IdleGrace = 30 * time.Second
	}
	r := &runner{js: js, pub: queue.NewPublisher(js), items: items, opts: opts, jobs: map[string]jobRef{}, open: map[int]int{}}
	var results jetstream.MessagesContext
	if opts.Wait {
		cons, err := js.OrderedConsumer(ctx, queue.ResultStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{queue.ResultSubject(opts.Batch)},
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		})
		if err != nil {
			return fmt.Errorf("subscribe to results of batch %s: %w", opts.Batch, err)
		}
		if results, err = cons.Messages(); err != nil {
			return fmt.Errorf("subscribe to results of batch %s: %w", opts.Batch, err)
		}
		defer results.Stop()
	}
	if err := r.index(ctx); err != nil {
		return err
	}
	var primaries, others []queue.Job
	var primaryOf, otherOf []jobRef
	for i := range items {
		it := &items[i]
		if it.Status != ToQueue {
			continue
		}
		primaries = append(primaries, r.job(it, it.Tag))
		primaryOf = append(primaryOf, jobRef{item: i, primary: true})
		if !opts.Wait && !opts.Referrer && !it.Force {
			for _, tag := range it.Tags {
				if tag != it.Tag {
					others = append(others, r.job(it, tag))
					otherOf = append(otherOf, jobRef{item: i})
				}
			}
		}
	}
	if err := r.publish(ctx, primaries, primaryOf); err != nil {
		return err
	}
	if err := r.publish(ctx, others, otherOf); err != nil {
		return err
	}
	r.progress(nil)
	if !opts.Wait {
		return nil
	}
	return r.wait(ctx, results)
}

type runner struct {
	js    jetstream.JetStream
	pub   *queue.Publisher
	items []Item
	opts  RunOptions
	// jobs maps the id of each stored job to its item.
	jobs map[string]jobRef
	// open counts the jobs of each item still without a result.
	open  map[int]int
	state Progress
}

type jobRef struct {
	item    int
	primary bool
	done    bool
}

func (r *runner) job(it *Item, tag string) queue.Job {
	return queue.Job{
		Version: queue.JobVersion, Registry: it.Registry, Repository: it.Repository, Digest: it.Digest, Tag: tag,
		MediaType: it.MediaType, Source: r.opts.Source, Received: time.Now().UTC(), Force: it.Force, Batch: r.opts.Batch,
		Replace: it.Replace,
	}
}

// index publishes the items' Found descriptions and refusals, the items
// concurrently (each item's describers one after the other).
func (r *runner) index(ctx context.Context) error {
	var pub *feed.Publisher
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range r.items {
		it := &r.items[i]
		if len(it.Found) == 0 && !it.Refused {
			continue
		}
		if pub == nil {
			pub = feed.NewPublisher(r.js)
		}
		if it.Refused {
			g.Go(func() error {
				e := RefusedEvent(*it)
				_, err := pub.Publish(gctx, e, EventID("refused", e))
				return err
			})
			continue
		}
		g.Go(func() error {
			for _, f := range it.Found {
				e := FoundEvent(*it, f)
				stored, err := pub.Fill(gctx, e, EventID("found", e))
				if err != nil {
					return err
				}
				if stored {
					it.Indexed++
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// FoundEvent is the description stream's event for the descriptions f of
// item it, found already in the registry (no model was asked).
func FoundEvent(it Item, f photo.Found) feed.Event {
	return feed.Event{
		Kind: feed.Found, Registry: it.Registry, Repository: it.Repository, Digest: it.Digest,
		Tags: it.Tags, By: f.By, Photos: f.Photos,
	}
}

// RefusedEvent is the description stream's event for a Refused item: why
// the manifest holds no photo.
func RefusedEvent(it Item) feed.Event {
	return feed.Event{
		Kind: feed.Refused, Registry: it.Registry, Repository: it.Repository, Digest: it.Digest,
		Tags: it.Tags, Reason: it.Reason,
	}
}

// EventID is the message id of an event reprocess publishes (kind "found"
// or "refused"): a digest of what it says (not of when), so a reprocess
// run repeated within the stream's duplicate window stores nothing new.
func EventID(kind string, e feed.Event) string {
	e.At = time.Time{}
	data, _ := json.Marshal(e) // an Event always marshals
	sum := sha256.Sum256(data)
	return kind + "-" + hex.EncodeToString(sum[:16])
}

// publish stores jobs in groups of PublishSize and records which were new.
func (r *runner) publish(ctx context.Context, jobs []queue.Job, refs []jobRef) error {
	for start := 0; start < len(jobs); start += r.opts.PublishSize {
		end := min(start+r.opts.PublishSize, len(jobs))
		fresh, err := r.pub.PublishNew(ctx, jobs[start:end]...)
		if err != nil {
			return err
		}
		for n, isNew := range fresh {
			ref := refs[start+n]
			it := &r.items[ref.item]
			if ref.primary {
				if !isNew {
					it.Status = AlreadyQueued
					continue
				}
				it.Status = Queued
				r.state.Queued++
			}
			if isNew && r.opts.Wait {
				r.jobs[jobs[start+n].ID()] = ref
				r.open[ref.item]++
			}
		}
	}
	return nil
}

// wait reads the batch's results until every stored job has one.
func (r *runner) wait(ctx context.Context, results jetstream.MessagesContext) error {
	idleSince := time.Time{}
	lastCheck := time.Now()
	for len(r.open) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		msg, err := results.Next(jetstream.NextMaxWait(time.Second))
		switch {
		case err == nil:
			idleSince = time.Time{}
			var res queue.Result
			if jerr := json.Unmarshal(msg.Data(), &res); jerr != nil {
				continue
			}
			if err := r.result(ctx, res); err != nil {
				return err
			}
			continue
		case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		default:
			return fmt.Errorf("read results of batch %s: %w", r.opts.Batch, err)
		}
		if time.Since(lastCheck) < 2*time.Second {
			continue
		}
		lastCheck = time.Now()
		if !r.queueIdle(ctx) {
			idleSince = time.Time{}
			continue
		}
		if idleSince.IsZero() {
			idleSince = time.Now()
		}
		if time.Since(idleSince) >= r.opts.IdleGrace {
			return fmt.Errorf("%w: %d photo(s) without a result (see regscribe failed list and the workers' logs)", ErrResultsLost, len(r.open))
		}
	}
	return nil
}

// queueIdle reports whether the workers' consumer exists and has no job
// pending, in flight or waiting for redelivery.
func (r *runner) queueIdle(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := r.js.Consumer(cctx, queue.Stream, queue.Consumer)
	if err != nil {
		return false
	}
	info, err := c.Info(cctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
}

// result records one job's result; the first result of a job counts (a
// job redelivered after its acknowledgement was lost may report twice).
func (r *runner) result(ctx context.Context, res queue.Result) error {
	ref, ok := r.jobs[res.JobID]
	if !ok || ref.done {
		return nil
	}
	ref.done = true
	r.jobs[res.JobID] = ref
	it := &r.items[ref.item]
	switch {
	case res.Outcome == queue.Failed:
		// The worst outcome of a photo's jobs is the photo's.
		it.Outcome = queue.Failed
		if it.Result == "" || ref.primary {
			it.Result = tagged(res, ref)
		}
	case res.Outcome == queue.Described && it.Outcome != queue.Failed:
		it.Outcome = queue.Described
	case it.Outcome == "":
		it.Outcome, it.Result = queue.Skipped, res.Reason
	}
	if ref.primary {
		it.Mode, it.Written, it.ModelCalls = res.Mode, res.Written, it.ModelCalls+res.ModelCalls
		// The result says how the worker wrote: only an annotation moves
		// just the tag its job named. A forced photo's other tags are left:
		// their jobs would be forced too, and call the model again. A
		// replacing photo's other tags get replacing jobs, which find the
		// new description remembered and write the same manifest.
		if res.Outcome == queue.Described && res.Mode == "annotation" && !it.Force {
			if err := r.queueOtherTags(ctx, ref.item); err != nil {
				return err
			}
		}
	} else {
		it.ModelCalls += res.ModelCalls
	}
	r.open[ref.item]--
	if r.open[ref.item] > 0 {
		return nil
	}
	delete(r.open, ref.item)
	switch it.Outcome {
	case queue.Described:
		r.state.Described++
	case queue.Failed:
		r.state.Failed++
	default:
		r.state.Skipped++
	}
	r.progress(it)
	return nil
}

func tagged(res queue.Result, ref jobRef) string {
	if ref.primary || res.Job.Tag == "" {
		return res.Reason
	}
	return "tag " + res.Job.Tag + ": " + res.Reason
}

// queueOtherTags queues a job for each other tag of a photo whose primary
// job wrote an annotated manifest: each finds the description remembered
// and moves its tag to the same manifest (with the primary job's policy:
// a replacing job replaces the other model's description on its tag too).
func (r *runner) queueOtherTags(ctx context.Context, i int) error {
	it := &r.items[i]
	var jobs []queue.Job
	var refs []jobRef
	for _, tag := range it.Tags {
		if tag != it.Tag {
			jobs = append(jobs, r.job(it, tag))
			refs = append(refs, jobRef{item: i})
		}
	}
	return r.publish(ctx, jobs, refs)
}

func (r *runner) progress(it *Item) {
	if r.opts.OnProgress == nil {
		return
	}
	p := r.state
	p.Item = it
	r.opts.OnProgress(p)
}

// Pending lists the queued items that have no outcome yet.
func Pending(items []Item) []Item {
	var out []Item
	for _, it := range items {
		if it.Status == Queued && it.Outcome == "" {
			out = append(out, it)
		}
	}
	return out
}

// Failures lists the items that failed in this run or could not be checked.
func Failures(items []Item) []Item {
	return slices.DeleteFunc(slices.Clone(items), func(it Item) bool {
		return it.Outcome != queue.Failed && it.Status != Unchecked
	})
}
