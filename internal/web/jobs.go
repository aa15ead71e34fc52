package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/queue"
)

// scanForList is how many job messages the jobs page reads from the job
// stream (one request each): it lists the oldest.
const scanForList = 200

// deadPage is how many dead letters the jobs page lists at a time (one
// request each, about); "retry" queues as many again per request.
const deadPage = 100

// Job states on the jobs page.
const (
	stateQueued   = "queued"
	stateInFlight = "in flight"
	stateWaiting  = "waiting for retry"
)

// queuedJob is one message of the job stream.
type queuedJob struct {
	Seq    uint64
	Stored time.Time
	// Job is nil for a message that is no regscribe job (a raw zot event).
	Job     *queue.Job
	Subject string
	State   string
	// LastError and RetryAt come from the workers' ledger.
	LastError string
	RetryAt   time.Time
}

// queueView is the job stream as the pages show it.
type queueView struct {
	Status queue.Status
	Jobs   []queuedJob
	// More is true when the stream holds more messages than were read.
	More bool
}

// readQueue reads the queue's status and its oldest limit messages, each
// with its state: not delivered yet (queued), delivered and put back with a
// delay not yet over (waiting for retry), or else in flight. It reads the
// messages that exist (about limit requests), however many jobs were
// acknowledged out of the stream between them.
func (s *Server) readQueue(ctx context.Context, limit int) (queueView, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	js := s.opts.JetStream
	var v queueView
	var err error
	if v.Status, err = queue.ReadStatus(ctx, js); err != nil {
		return v, err
	}
	st, err := js.Stream(ctx, queue.Stream)
	if err != nil {
		return v, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return v, err
	}
	var delivered uint64
	if c, err := js.Consumer(ctx, queue.Stream, queue.Consumer); err == nil {
		if ci, err := c.Info(ctx); err == nil {
			delivered = ci.Delivered.Stream
		}
	}
	ledger, lerr := js.KeyValue(ctx, queue.LedgerBucket)
	if lerr != nil && !errors.Is(lerr, jetstream.ErrBucketNotFound) {
		return v, lerr
	}
	if info.State.Msgs == 0 {
		return v, nil
	}
	msgs, err := queue.ReadMessages(ctx, st, info.State.FirstSeq, 0, limit)
	if err != nil {
		return v, err
	}
	v.More = info.State.Msgs > uint64(len(msgs))
	for _, m := range msgs {
		seq := m.Sequence
		qj := queuedJob{Seq: seq, Stored: m.Time, Subject: m.Subject, State: stateQueued}
		if j, err := queue.ParseJob(m.Data); err == nil {
			qj.Job = &j
		}
		if seq <= delivered {
			qj.State = stateInFlight
			if ledger != nil {
				if e, err := ledger.Get(ctx, strconv.FormatUint(seq, 10)); err == nil {
					var rec queue.Record
					if json.Unmarshal(e.Value(), &rec) == nil && rec.Stored.Equal(m.Time) {
						qj.LastError = rec.LastError
						if rec.RetryAt.After(time.Now()) {
							qj.State, qj.RetryAt = stateWaiting, rec.RetryAt
						}
					}
				}
			}
		}
		v.Jobs = append(v.Jobs, qj)
	}
	return v, nil
}

// deadLetters reads a window of the dead letters (none when there is no
// dead-letter stream yet).
func (s *Server) deadLetters(ctx context.Context, w queue.DeadLetterWindow) (queue.DeadLetterPage, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	p, err := queue.ReadDeadLetters(ctx, s.opts.JetStream, w)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return queue.DeadLetterPage{}, nil
	}
	return p, err
}

type jobsData struct {
	Queue    queueView
	Queued   []queuedJob
	InFlight []queuedJob
	Waiting  []queuedJob
	Dead     queue.DeadLetterPage
	// DeadAll is true when Dead shows every dead letter; DeadFrom and
	// DeadTo are the oldest and newest shown.
	DeadAll          bool
	DeadFrom, DeadTo uint64
	// Refused are the newest manifests that hold no photo, of
	// RefusedTotal.
	Refused      []Refusal
	RefusedTotal int
	Runs         []runSnapshot
	Repositories []string
	// Counts are the photos of each repository by state.
	Counts []Repository
	Error  string
}

func (s *Server) jobs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var data jobsData
	q, err := s.readQueue(ctx, scanForList)
	if err != nil {
		data.Error = "The job queue cannot be read: " + err.Error()
	}
	data.Queue = q
	for _, j := range q.Jobs {
		switch j.State {
		case stateQueued:
			data.Queued = append(data.Queued, j)
		case stateWaiting:
			data.Waiting = append(data.Waiting, j)
		default:
			data.InFlight = append(data.InFlight, j)
		}
	}
	window := queue.DeadLetterWindow{Limit: deadPage}
	if window.Before, err = sequence(r.URL.Query().Get("before")); err == nil {
		window.After, err = sequence(r.URL.Query().Get("after"))
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Which failed jobs?", err)
		return
	}
	if data.Dead, err = s.deadLetters(ctx, window); err != nil {
		data.Error = "The dead letters cannot be read: " + err.Error()
	}
	data.DeadAll = data.Dead.Older == 0 && data.Dead.Newer == 0
	if l := data.Dead.Letters; len(l) > 0 {
		data.DeadFrom, data.DeadTo = l[len(l)-1].Seq, l[0].Seq
	}
	if data.Refused, data.RefusedTotal, err = s.opts.Catalog.Refusals(ctx, scanForList); err != nil {
		data.Error = "The search index cannot be read: " + err.Error()
	}
	data.Runs = s.runs.list()
	if repos, err := s.opts.Catalog.Repositories(ctx); err == nil {
		data.Counts = repos
		for _, rp := range repos {
			data.Repositories = append(data.Repositories, rp.Registry+"/"+rp.Repository)
		}
	}
	s.render(w, r, http.StatusOK, "jobs", page{Title: "Jobs", Nav: "jobs", Data: data})
}

// sequence parses a dead letter's sequence from a form or query ("": 0).
func sequence(v string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a dead letter's number", v)
	}
	return n, nil
}

// retry is POST /jobs/retry: seq=N queues one dead letter's job again;
// from=A&to=B the ones stored from A to B (a window of the jobs page);
// all=1 every one. It queues at most deadPage per request, the oldest
// first, and says when more remain.
func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := withTimeout(r.Context())
	defer cancel()
	if r.PostFormValue("all") == "" && r.PostFormValue("from") == "" {
		seq, err := sequence(r.PostFormValue("seq"))
		if err != nil || seq == 0 {
			s.fail(w, r, http.StatusBadRequest, "Which failed job?", fmt.Errorf("seq %q is not a dead letter's number", r.PostFormValue("seq")))
			return
		}
		if _, err := queue.RetryDead(ctx, s.opts.JetStream, seq); err != nil {
			s.fail(w, r, http.StatusConflict, "The job could not be queued again", err)
			return
		}
		http.Redirect(w, r, "/jobs?flash=retried", http.StatusSeeOther)
		return
	}
	from, err := sequence(r.PostFormValue("from"))
	var to uint64
	if err == nil {
		to, err = sequence(r.PostFormValue("to"))
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Which failed jobs?", err)
		return
	}
	done, next, err := queue.RetryDeadLetters(ctx, s.opts.JetStream, from, to, deadPage)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "The dead letters cannot be read", err)
		return
	}
	var errs []error
	for _, d := range done {
		if d.Err != nil {
			errs = append(errs, d.Err)
		}
	}
	switch {
	case len(errs) > 0:
		s.opts.Log.Warn("retry failed jobs", "err", errors.Join(errs...))
		http.Redirect(w, r, "/jobs?flash=retry-partial", http.StatusSeeOther)
	case next != 0:
		http.Redirect(w, r, "/jobs?flash=retried-batch", http.StatusSeeOther)
	case r.PostFormValue("all") != "":
		http.Redirect(w, r, "/jobs?flash=retried-all", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/jobs?flash=retried-shown", http.StatusSeeOther)
	}
}
