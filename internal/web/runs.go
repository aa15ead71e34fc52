package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/reprocess"
)

// keepRuns is how many finished reprocess runs the jobs page remembers;
// maxActiveRuns how many may run at once (each plans a repository and
// waits for its jobs).
const (
	keepRuns      = 20
	maxActiveRuns = 4
)

// Phases of a reprocess run.
const (
	phasePlanning = "planning"
	phaseRunning  = "running"
	phaseDone     = "done"
	phaseFailed   = "failed"
)

// run is one reprocess started from the jobs page.
type run struct {
	mu      sync.Mutex
	snap    runSnapshot
	changed chan struct{} // closed and replaced on every change
}

// runSnapshot is a run's state as the page and its event stream show it.
type runSnapshot struct {
	ID       string           `json:"id"`
	Target   string           `json:"target"`
	Force    bool             `json:"force"`
	Started  time.Time        `json:"started"`
	Phase    string           `json:"phase"`
	Queued   int              `json:"queued"`
	Done     int              `json:"done"`
	Counts   reprocess.Counts `json:"counts"`
	Failures []failureView    `json:"failures"`
	Error    string           `json:"error,omitempty"`
}

type failureView struct {
	Ref    string `json:"ref"`
	Reason string `json:"reason"`
}

// Finished reports whether the run ended.
func (s runSnapshot) Finished() bool { return s.Phase == phaseDone || s.Phase == phaseFailed }

func (r *run) update(f func(*runSnapshot)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.snap)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *run) state() (runSnapshot, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.snap
	s.Failures = slices.Clone(s.Failures)
	return s, r.changed
}

type runs struct {
	mu    sync.Mutex
	byID  map[string]*run
	order []string
}

func newRuns() *runs { return &runs{byID: map[string]*run{}} }

// add remembers r, unless maxActiveRuns are still running (false). It
// forgets the oldest finished runs past keepRuns, however old a run still
// going is, so fewer than keepRuns + maxActiveRuns are remembered.
func (rs *runs) add(r *run) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var finished []string
	for _, id := range rs.order {
		if s, _ := rs.byID[id].state(); s.Finished() {
			finished = append(finished, id)
		}
	}
	if len(rs.order)-len(finished) >= maxActiveRuns {
		return false
	}
	// Room for r among the finished once it finishes.
	for _, id := range finished[:max(0, len(finished)+1-keepRuns)] {
		delete(rs.byID, id)
	}
	rs.order = slices.DeleteFunc(rs.order, func(id string) bool { return rs.byID[id] == nil })
	rs.byID[r.snap.ID] = r
	rs.order = append(rs.order, r.snap.ID)
	return true
}

func (rs *runs) get(id string) *run {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.byID[id]
}

// list returns the runs, newest first.
func (rs *runs) list() []runSnapshot {
	rs.mu.Lock()
	ids := slices.Clone(rs.order)
	rs.mu.Unlock()
	var out []runSnapshot
	for _, id := range slices.Backward(ids) {
		if r := rs.get(id); r != nil {
			s, _ := r.state()
			out = append(out, s)
		}
	}
	return out
}

// startReprocess is POST /jobs/reprocess: target=REGISTRY/REPOSITORY and
// force=1 to describe every photo again (else only those the configured
// model has not described, as `regscribe reprocess` does).
func (s *Server) startReprocess(w http.ResponseWriter, r *http.Request) {
	target := strings.TrimSpace(r.PostFormValue("target"))
	host, repo, _ := strings.Cut(target, "/")
	switch {
	case host == "" || repo == "" || strings.ContainsAny(repo, ":@ "):
		s.fail(w, r, http.StatusBadRequest, "Which repository?", fmt.Errorf("%q is not REGISTRY/REPOSITORY", target))
		return
	case !s.opts.Registry.Allowed(host):
		s.fail(w, r, http.StatusBadRequest, "That registry is not configured", fmt.Errorf("%s is not in REGSCRIBE_REGISTRIES", host))
		return
	case s.opts.Model == "":
		s.fail(w, r, http.StatusInternalServerError, "Reprocessing is not set up", errors.New("the web server was started without the configured model"))
		return
	}
	host = s.registryName(host)
	target = host + "/" + repo
	force := r.PostFormValue("force") != ""
	batch := reprocess.NewBatch()
	// One run per repository at a time, across processes: a second one
	// here joins this server's run, or is refused naming the other's.
	held, release, err := reprocess.Claim(s.ctx, s.opts.Leases, host, []string{repo}, reprocess.NewHolder(batch, "the gallery's jobs page"))
	var running *reprocess.RunningError
	switch {
	case errors.As(err, &running) && s.runs.get(running.Holder.Batch) != nil:
		http.Redirect(w, r, "/jobs/runs/"+running.Holder.Batch, http.StatusSeeOther)
		return
	case running != nil:
		s.fail(w, r, http.StatusConflict, "This repository is being reprocessed already", err)
		return
	case err != nil:
		s.fail(w, r, http.StatusServiceUnavailable, "The reprocess could not start", err)
		return
	}
	rn := &run{changed: make(chan struct{}), snap: runSnapshot{
		ID: batch, Target: target, Force: force, Started: time.Now(), Phase: phasePlanning, Failures: []failureView{},
	}}
	if s.ctx.Err() != nil {
		s.fail(w, r, http.StatusServiceUnavailable, "The gallery is stopping", errors.New("no run starts while it stops"))
		return
	}
	if !s.runs.add(rn) {
		s.fail(w, r, http.StatusTooManyRequests, "Too many reprocess runs at once",
			fmt.Errorf("%d runs are still going; start this one when one of them has ended", maxActiveRuns))
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer release()
		s.reprocess(held, rn, host, repo, force)
	}()
	http.Redirect(w, r, "/jobs/runs/"+batch, http.StatusSeeOther)
}

// reprocess plans and runs one reprocess, as `regscribe reprocess --wait`
// does, recording its progress in rn; ctx ends with the server or the
// run's lease.
func (s *Server) reprocess(ctx context.Context, rn *run, host, repo string, force bool) {
	fail := func(err error) {
		rn.update(func(st *runSnapshot) { st.Phase, st.Error = phaseFailed, err.Error() })
	}
	items, err := reprocess.Plan(ctx, s.opts.Registry, reprocess.PlanOptions{
		Registry: host, Repository: repo, Model: s.opts.Model, Force: force,
	})
	if err != nil {
		fail(err)
		return
	}
	if !force {
		dead, err := queue.DeadLetters(ctx, s.opts.JetStream)
		if err != nil {
			fail(err)
			return
		}
		reprocess.ExcludeFailed(items, dead)
	}
	rn.update(func(st *runSnapshot) { st.Phase, st.Counts = phaseRunning, reprocess.Summarize(items) })
	runErr := reprocess.Run(ctx, s.opts.JetStream, items, reprocess.RunOptions{
		Batch: rn.snap.ID, Wait: true, Referrer: s.opts.Referrer,
		OnProgress: func(p reprocess.Progress) {
			// Run calls this from its own goroutine, between its changes to items.
			c := reprocess.Summarize(items)
			rn.update(func(st *runSnapshot) { st.Queued, st.Done, st.Counts = p.Queued, p.Done(), c })
		},
	})
	final := reprocess.Summarize(items)
	var failures []failureView
	for _, it := range reprocess.Failures(items) {
		failures = append(failures, failureView{Ref: it.Ref(), Reason: it.Result + it.Reason})
	}
	rn.update(func(st *runSnapshot) {
		st.Counts, st.Failures, st.Phase = final, append(st.Failures[:0], failures...), phaseDone
		if runErr != nil {
			st.Phase, st.Error = phaseFailed, runErr.Error()
		}
	})
}

type runData struct {
	Run  runSnapshot
	Rows []countRow
}

// countRow is one line of the summary, as `regscribe reprocess` prints it.
type countRow struct {
	Name  string
	Key   string
	Count int
}

// summaryRows are the counts of the CLI's summary, in its order.
func summaryRows(c reprocess.Counts) []countRow {
	return []countRow{
		{"tags listed", "tags", c.Tags},
		{"distinct manifests", "manifests", c.Manifests},
		{"not photos", "notPhotos", c.NotPhotos},
		{"already described", "alreadyDescribed", c.AlreadyDescribed},
		{"failed before", "failedBefore", c.FailedBefore},
		{"could not be read", "errors", c.Errors},
		{"queued", "queued", c.Queued},
		{"already queued", "alreadyQueued", c.AlreadyQueued},
		{"described", "described", c.Described},
		{"skipped", "skipped", c.Skipped},
		{"failed", "failed", c.Failed},
		{"still running", "pending", c.Pending},
		{"model calls", "modelCalls", c.ModelCalls},
	}
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	rn := s.runs.get(r.PathValue("id"))
	if rn == nil {
		s.fail(w, r, http.StatusNotFound, "No such run", errors.New("this server did not start it, or has forgotten it"))
		return
	}
	st, _ := rn.state()
	s.render(w, r, http.StatusOK, "run", page{Title: "Reprocess " + st.Target, Nav: "jobs", Data: runData{Run: st, Rows: summaryRows(st.Counts)}})
}

// runEvents streams a run's state as server-sent events ("state", then
// "end" once it finished).
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) {
	rn := s.runs.get(r.PathValue("id"))
	if rn == nil {
		http.NotFound(w, r)
		return
	}
	// The stream outlives a server's write timeout: lift it for this response.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		st, changed := rn.state()
		data, err := json.Marshal(struct {
			runSnapshot
			Rows []countRow `json:"rows"`
		}{st, summaryRows(st.Counts)})
		if err != nil {
			return
		}
		fmt.Fprintf(w, "event: state\ndata: %s\n\n", data)
		if st.Finished() {
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			flusher.Flush()
			return
		}
		flusher.Flush()
		if !s.awaitChange(w, r, flusher, changed, keepAlive.C) {
			return
		}
	}
}

// awaitChange waits for the run to change, keeping the stream alive; false
// when the client or the server went away.
func (s *Server) awaitChange(w http.ResponseWriter, r *http.Request, flusher http.Flusher, changed <-chan struct{}, tick <-chan time.Time) bool {
	for {
		select {
		case <-r.Context().Done():
			return false
		case <-s.ctx.Done():
			return false
		case <-tick:
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		case <-changed:
			// Coalesce a burst of changes into one event.
			select {
			case <-time.After(100 * time.Millisecond):
				return true
			case <-r.Context().Done():
				return false
			}
		}
	}
}
