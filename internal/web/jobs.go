package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/queue"
)

// How many job messages a page reads from the job stream (one request
// each): the jobs page lists the oldest scanForList; the front page counts
// the oldest scanForCounts per repository.
const (
	scanForList   = 200
	scanForCounts = 2000
)

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
// delay not yet over (waiting for retry), or else in flight.
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
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		if len(v.Jobs) >= limit {
			v.More = true
			break
		}
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return v, err
		}
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

// deadLetters lists the dead letters, newest first.
func (s *Server) deadLetters(ctx context.Context) ([]queue.DeadLetter, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	dead, err := queue.DeadLetters(ctx, s.opts.JetStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	slices.Reverse(dead)
	return dead, err
}

type jobsData struct {
	Queue    queueView
	Queued   []queuedJob
	InFlight []queuedJob
	Waiting  []queuedJob
	Dead     []queue.DeadLetter
	// Refused are the newest manifests that hold no photo, of
	// RefusedTotal.
	Refused      []Refusal
	RefusedTotal int
	Runs         []runSnapshot
	Repositories []string
	Error        string
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
	if data.Dead, err = s.deadLetters(ctx); err != nil {
		data.Error = "The dead letters cannot be read: " + err.Error()
	}
	if data.Refused, data.RefusedTotal, err = s.opts.Catalog.Refusals(ctx, scanForList); err != nil {
		data.Error = "The search index cannot be read: " + err.Error()
	}
	data.Runs = s.runs.list()
	if repos, err := s.opts.Catalog.Repositories(ctx); err == nil {
		for _, rp := range repos {
			data.Repositories = append(data.Repositories, rp.Registry+"/"+rp.Repository)
		}
	}
	s.render(w, r, http.StatusOK, "jobs", page{Title: "Jobs", Nav: "jobs", Data: data})
}

// retry is POST /jobs/retry: seq=N queues one dead letter's job again,
// all=1 every one.
func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := withTimeout(r.Context())
	defer cancel()
	var seqs []uint64
	if r.PostFormValue("all") != "" {
		dead, err := queue.DeadLetters(ctx, s.opts.JetStream)
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, "The dead letters cannot be read", err)
			return
		}
		for _, d := range dead {
			seqs = append(seqs, d.Seq)
		}
	} else {
		seq, err := strconv.ParseUint(r.PostFormValue("seq"), 10, 64)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "Which failed job?", fmt.Errorf("seq %q is not a dead letter's number", r.PostFormValue("seq")))
			return
		}
		seqs = append(seqs, seq)
	}
	var errs []error
	for _, seq := range seqs {
		if _, err := queue.RetryDead(ctx, s.opts.JetStream, seq); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case len(errs) > 0 && len(errs) == len(seqs) && len(seqs) == 1:
		s.fail(w, r, http.StatusConflict, "The job could not be queued again", errs[0])
	case len(errs) > 0:
		s.opts.Log.Warn("retry failed jobs", "err", errors.Join(errs...))
		http.Redirect(w, r, "/jobs?flash=retry-partial", http.StatusSeeOther)
	case len(seqs) > 1:
		http.Redirect(w, r, "/jobs?flash=retried-all", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/jobs?flash=retried", http.StatusSeeOther)
	}
}
