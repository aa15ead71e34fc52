package queue

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the result and dead-letter streams.
const (
	// ResultStream holds one Result per finished job, for progress and audit.
	ResultStream = "REGSCRIBE_RESULTS"
	// ResultSubjectPrefix is followed by the job's batch ("live" for jobs
	// from notifications).
	ResultSubjectPrefix = "regscribe.results."
	// DeadStream holds jobs that were given up, with the reason.
	DeadStream = "REGSCRIBE_DEAD"
	// DeadSubjectPrefix is followed by the job's source.
	DeadSubjectPrefix = "regscribe.dead."
	// LiveBatch is the batch of jobs that came from notifications.
	LiveBatch = "live"
)

// Outcome is how a job ended.
type Outcome string

// The outcomes of a job.
const (
	Described Outcome = "described"
	Skipped   Outcome = "skipped"
	// Refused ends a job whose manifest holds no photo once its layers'
	// bytes were read (a text file pushed with oras's default media
	// type): the reason is on the description stream too.
	Refused Outcome = "refused"
	Failed  Outcome = "failed"
	// Removed ends a deletion job (Job.Deleted) whose manifest the
	// registry no longer has: its descriptions were removed from search.
	Removed Outcome = "removed"
)

// Result is what a worker publishes when a job ends (not on a retry).
type Result struct {
	Version int    `json:"v"`
	JobID   string `json:"jobId"`
	// JobSeq is the sequence of the job's message in the job stream: the
	// message's own identity (two notifications of one push are one job
	// id, but each stored message has its own sequence).
	JobSeq     uint64    `json:"jobSeq,omitempty"`
	Job        Job       `json:"job"`
	Outcome    Outcome   `json:"outcome"`
	Reason     string    `json:"reason,omitempty"`
	Mode       string    `json:"mode,omitempty"`
	Written    string    `json:"written,omitempty"`
	ModelCalls int       `json:"modelCalls,omitempty"`
	Attempts   int       `json:"attempts"`
	At         time.Time `json:"at"`
}

// DeadLetter is a job that was given up: permanently failed, or out of attempts.
type DeadLetter struct {
	Version  int       `json:"v"`
	Job      Job       `json:"job"`
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	FailedAt time.Time `json:"failedAt"`
	// JobSeq is the sequence of the job's message in the job stream.
	JobSeq uint64 `json:"jobSeq,omitempty"`
	// Seq is the dead letter's sequence in DeadStream (set when read).
	Seq uint64 `json:"id,omitempty"`
}

// ResultSubject is the subject results of a batch are published on.
func ResultSubject(batch string) string {
	if batch == "" {
		batch = LiveBatch
	}
	return ResultSubjectPrefix + batch
}

// Reporter publishes results and dead letters.
type Reporter struct {
	js jetstream.JetStream
}

// NewReporter returns a Reporter on js.
func NewReporter(js jetstream.JetStream) *Reporter { return &Reporter{js: js} }

// publishRetries keeps a report publish going through a NATS cluster's
// leader election (a few seconds) or a server restart.
var publishRetries = []jetstream.PublishOpt{jetstream.WithRetryAttempts(60), jetstream.WithRetryWait(250 * time.Millisecond)}

// reportOpts are the publish options of a report about the job message
// with stream sequence jobSeq: its message id is kind and the sequence, so
// a retried publish whose first ack was lost, or a redelivery of the same
// message reporting again, counts once within the duplicate window, while
// reports about different messages (two malformed ones, a job queued again
// with `failed retry`) never collide. Without a sequence there is no id.
func reportOpts(kind string, jobSeq uint64) []jetstream.PublishOpt {
	opts := append([]jetstream.PublishOpt{}, publishRetries...)
	if jobSeq != 0 {
		opts = append(opts, jetstream.WithMsgID(kind+"-"+strconv.FormatUint(jobSeq, 10)))
	}
	return opts
}

// Result publishes r, retrying for up to about 15 s. One job message has
// one result (see reportOpts).
func (p *Reporter) Result(ctx context.Context, r Result) error {
	r.Version = 1
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = p.js.Publish(ctx, ResultSubject(r.Job.Batch), data, reportOpts("result", r.JobSeq)...)
	return err
}

// Dead stores a dead letter. A job is terminated only after this succeeded.
// One job message has one dead letter (see reportOpts).
func (p *Reporter) Dead(ctx context.Context, d DeadLetter) error {
	d.Version = 1
	d.Seq = 0
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	src := d.Job.Source
	if src == "" {
		src = "unknown"
	}
	_, err = p.js.Publish(ctx, DeadSubjectPrefix+src, data, reportOpts("dead", d.JobSeq)...)
	return err
}

// Excerpt returns s cut to 512 bytes (for reasons and raw jobs kept in
// dead letters and Term reasons).
func Excerpt(s string) string {
	if len(s) > 512 {
		return s[:512] + "…"
	}
	return s
}
