package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream objects regscribe uses.
const (
	// Stream holds jobs.
	Stream = "REGSCRIBE_JOBS"
	// SubjectPrefix is the prefix of job subjects; the last token is the source format.
	SubjectPrefix = "regscribe.jobs."
	// Consumer is the durable pull consumer all workers share.
	Consumer = "regscribe-workers"
	// DescriptionBucket is the key-value bucket that remembers descriptions.
	DescriptionBucket = "regscribe-descriptions"
)

// Subject returns the subject for jobs from the given source format.
func Subject(source string) string { return SubjectPrefix + source }

// StreamOptions configure [EnsureStream].
type StreamOptions struct {
	// Replicas of the stream in a NATS cluster. If zero, 1 is used.
	Replicas int
	// Duplicates is the window in which a repeated Nats-Msg-Id is dropped.
	// If zero, 2 minutes are used.
	Duplicates time.Duration
	// ExtraSubjects are captured in the job stream besides regscribe's own
	// (the subject zot's nats sink publishes raw events to).
	ExtraSubjects []string
	// DeadLetterMaxAge is how long a dead letter is kept. If zero,
	// [DefaultDeadLetterMaxAge]. It must outlast the dead letters'
	// duplicate window (10 minutes).
	DeadLetterMaxAge time.Duration
	// DeadLetterMaxCount is how many dead letters are kept; past it the
	// oldest are dropped. If zero, [DefaultDeadLetterMaxCount].
	DeadLetterMaxCount int64
}

// The dead letters' retention when [StreamOptions] sets none: a month of
// failures is enough to notice and fix their cause, and ten thousand bound
// what listing them costs after a mass failure.
const (
	DefaultDeadLetterMaxAge   = 30 * 24 * time.Hour
	DefaultDeadLetterMaxCount = 10_000
)

// EnsureStream creates or updates the job stream (file storage, work queue),
// and the result and dead-letter streams beside it. An existing dead-letter
// stream takes the retention of opts at once: the oldest dead letters past
// it are dropped.
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts StreamOptions) (jetstream.Stream, error) {
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.Duplicates == 0 {
		opts.Duplicates = 2 * time.Minute
	}
	if opts.DeadLetterMaxAge == 0 {
		opts.DeadLetterMaxAge = DefaultDeadLetterMaxAge
	}
	if opts.DeadLetterMaxCount == 0 {
		opts.DeadLetterMaxCount = DefaultDeadLetterMaxCount
	}
	subjects := append([]string{SubjectPrefix + ">"}, opts.ExtraSubjects...)
	// Processes configured with fewer extra subjects never take one away.
	if existing, err := js.Stream(ctx, Stream); err == nil {
		subjects = union(existing.CachedInfo().Config.Subjects, subjects)
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "regscribe: photos to describe",
		Subjects:    subjects,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		Duplicates:  opts.Duplicates,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", Stream, err)
	}
	for _, cfg := range []jetstream.StreamConfig{{
		Name:        ResultStream,
		Description: "regscribe: how each job ended",
		Subjects:    []string{ResultSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		MaxAge:      7 * 24 * time.Hour,
		Duplicates:  reportWindow,
	}, {
		Name:        DeadStream,
		Description: "regscribe: jobs given up, with the reason",
		Subjects:    []string{DeadSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		MaxAge:      opts.DeadLetterMaxAge,
		MaxMsgs:     opts.DeadLetterMaxCount,
		Discard:     jetstream.DiscardOld,
		Duplicates:  reportWindow,
	}} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return s, nil
}

// reportWindow is how long a result or dead letter of one job message is
// stored once: a job whose acknowledgement was lost is delivered again
// after the ack wait and reports again under the same id, which this window
// must outlast.
const reportWindow = 10 * time.Minute

// ConsumerOptions configure [EnsureConsumer].
type ConsumerOptions struct {
	// AckWait is how long a delivered job may go without Ack, Nak or
	// InProgress before it is delivered again. If zero, 60 s is used.
	AckWait time.Duration
	// MaxAckPending bounds the jobs in flight across all workers. If zero, 1000.
	MaxAckPending int
	// ExtraSubjects are the stream's extra subjects the workers also take.
	ExtraSubjects []string
}

// EnsureConsumer creates or updates the durable consumer all workers share.
//
// The consumer delivers a job for as long as it is in the stream (no
// MaxDeliver): a message past a delivery limit would stay in the work-queue
// stream, never delivered and never seen. The workers count attempts
// themselves and give a job up as a dead letter, each with its own
// REGSCRIBE_MAX_ATTEMPTS, so no worker's configuration rewrites another's.
// An existing consumer with a limit (earlier versions) is updated to none.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, opts ConsumerOptions) (jetstream.Consumer, error) {
	if opts.AckWait == 0 {
		opts.AckWait = 60 * time.Second
	}
	if opts.MaxAckPending == 0 {
		opts.MaxAckPending = 1000
	}
	filters := append([]string{SubjectPrefix + ">"}, opts.ExtraSubjects...)
	if existing, err := js.Consumer(ctx, Stream, Consumer); err == nil {
		info := existing.CachedInfo().Config
		filters = union(append(info.FilterSubjects, info.FilterSubject), filters)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
		Durable:        Consumer,
		Description:    "regscribe workers",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        opts.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  opts.MaxAckPending,
		FilterSubjects: filters,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", Consumer, err)
	}
	return c, nil
}

// union returns the subjects of a and b, each once, empty ones left out.
func union(a, b []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range append(append([]string{}, a...), b...) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
