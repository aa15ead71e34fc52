package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/reprocess"
)

// Source is the Job.Source of the jobs the gallery queues (their subject is
// regscribe.jobs.web).
const Source = "web"

// Limits of a correction's fields, in bytes.
const (
	maxDescription = 4000
	maxAlt         = 500
	maxKeywords    = 30
	maxText        = 4000
)

// correctionWait is how long a correction may take to become searchable
// before the page is shown anyway, with the description still to come.
const correctionWait = 8 * time.Second

// target finds the photo a form names (registry, repository, layer) in the
// index: the description shown on its page.
func (s *Server) target(r *http.Request) (Entry, error) {
	reg, repo, layer := r.PostFormValue("registry"), r.PostFormValue("repository"), r.PostFormValue("layer")
	if reg == "" || repo == "" || layer == "" {
		return Entry{}, errors.New("the form names no photo")
	}
	if !s.opts.Registry.Allowed(reg) {
		return Entry{}, fmt.Errorf("%s is not in REGSCRIBE_REGISTRIES", reg)
	}
	reg = s.registryName(reg)
	entries, err := s.opts.Catalog.Photo(r.Context(), reg, repo, layer)
	if err != nil {
		return Entry{}, err
	}
	d, ok := photoView(entries, layer)
	if !ok || d.Shown.Layer != layer {
		return Entry{}, fmt.Errorf("the index has no photo %s/%s@%s", reg, repo, layer)
	}
	return d.Shown, nil
}

// job is a job for the photo e from the gallery: it names the photo's
// manifest and its primary tag (the one an annotation-mode write-back moves).
func job(e Entry) queue.Job {
	return queue.Job{
		Version: queue.JobVersion, Registry: e.Registry, Repository: e.Repository, Digest: e.Digest,
		Tag: reprocess.PrimaryTag(e.Tags), Source: Source, Received: time.Now().UTC(), Event: newEventID(),
	}
}

// newEventID makes each click its own job: two "describe again" of one
// photo are two jobs, never one dropped as a duplicate.
func newEventID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "web:" + hex.EncodeToString(b)
}

// describeAgain is POST /actions/describe: a forced job for the photo.
func (s *Server) describeAgain(w http.ResponseWriter, r *http.Request) {
	e, err := s.target(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Which photo?", err)
		return
	}
	if !s.confirmed(w, r, e, "/actions/describe") {
		return
	}
	j := job(e)
	j.Force = true
	if err := queue.NewPublisher(s.opts.JetStream).Publish(r.Context(), j); err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, "The job could not be queued", err)
		return
	}
	http.Redirect(w, r, photoURL(e.Registry, e.Repository, e.Layer)+"?flash=describing", http.StatusSeeOther)
}

// correct is POST /actions/correct: a job carrying the person's description,
// which a worker writes back like a model's. The page waits a little for
// it to be written and indexed.
func (s *Server) correct(w http.ResponseWriter, r *http.Request) {
	e, err := s.target(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Which photo?", err)
		return
	}
	c, err := correction(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "The correction cannot be saved", err)
		return
	}
	if !s.confirmed(w, r, e, "/actions/correct") {
		return
	}
	c.Layer = e.Layer
	j := job(e)
	j.Correction = &c
	if err := queue.NewPublisher(s.opts.JetStream).Publish(r.Context(), j); err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, "The correction could not be queued", err)
		return
	}
	flash := "correcting"
	if s.awaitCorrection(r.Context(), e, c) {
		flash = "corrected"
		if r.PostFormValue("restore") != "" {
			flash = "restored"
		}
	}
	http.Redirect(w, r, photoURL(e.Registry, e.Repository, e.Layer)+"?flash="+flash, http.StatusSeeOther)
}

// correction reads the form's fields.
func correction(r *http.Request) (queue.Correction, error) {
	c := queue.Correction{
		Description: strings.TrimSpace(r.PostFormValue("description")),
		Alt:         strings.TrimSpace(r.PostFormValue("alt")),
		Text:        strings.TrimSpace(r.PostFormValue("text")),
		By:          userOf(r.Context()),
		At:          time.Now().UTC(),
	}
	for _, k := range strings.Split(r.PostFormValue("keywords"), ",") {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(c.Keywords, k) {
			c.Keywords = append(c.Keywords, k)
		}
	}
	switch {
	case c.Description == "":
		return c, errors.New("the description is empty")
	case len(c.Description) > maxDescription:
		return c, fmt.Errorf("the description is over %d bytes", maxDescription)
	case len(c.Alt) > maxAlt:
		return c, fmt.Errorf("the alt text is over %d bytes", maxAlt)
	case len(c.Text) > maxText:
		return c, fmt.Errorf("the visible text is over %d bytes", maxText)
	case len(c.Keywords) > maxKeywords:
		return c, fmt.Errorf("over %d keywords", maxKeywords)
	}
	return c, nil
}

// awaitCorrection waits until the index holds c for the photo (a worker
// wrote it and the index applied the description event), or correctionWait.
func (s *Server) awaitCorrection(ctx context.Context, e Entry, c queue.Correction) bool {
	ctx, cancel := context.WithTimeout(ctx, correctionWait)
	defer cancel()
	model := photo.PersonModel(c.By)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.opts.Catalog.Wait(ctx, s.opts.JetStream); err != nil {
			return false
		}
		entries, err := s.opts.Catalog.Photo(ctx, e.Registry, e.Repository, e.Layer)
		// The worker may tidy the text (spaces, quotes): the person's
		// entry at or after this correction's time is it.
		if err == nil && slices.ContainsFunc(entries, func(x Entry) bool {
			return x.Layer == e.Layer && x.Model == model && !replaced(x) && !x.Created.Before(c.At.Add(-time.Second))
		}) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// confirmation is what a form must carry in its confirm field to replace
// the description e, when e is a person's: a fingerprint of that
// description, so that a confirmation given for one correction never
// replaces another written since. A model's description needs none ("").
func confirmation(e Entry) string {
	if !photo.IsPerson(e.Model) {
		return ""
	}
	sum := sha256.Sum256([]byte(e.Model + "\x00" + e.Created.UTC().Format(time.RFC3339Nano) + "\x00" + e.Description))
	return hex.EncodeToString(sum[:12])
}

type confirmData struct {
	// Current is the person's description the form would replace.
	Current Entry
	// Action is where the confirmed form goes; Describe is set for
	// "Describe again" (the model's words replace the person's).
	Action   string
	Describe bool
	// Proposed is the description the form would write (a correction).
	Proposed string
	// Fields are the form's own fields, sent again with the confirmation.
	Fields [][2]string
	// Confirm is the confirm field's value; Stale is set when the form
	// carried a confirmation of an earlier description.
	Confirm string
	Stale   bool
	Back    string
}

// confirmed reports whether the form may replace the photo's shown
// description e: it may when e is a model's, or when the form confirms
// replacing this very correction. Otherwise it answers with a page that
// asks (409 Conflict: nothing is queued), whose button sends the same
// form again with the confirmation; it works without script.
func (s *Server) confirmed(w http.ResponseWriter, r *http.Request, e Entry, action string) bool {
	want := confirmation(e)
	got := r.PostFormValue("confirm")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
		return true
	}
	d := confirmData{Current: e, Action: action, Describe: action == "/actions/describe", Proposed: r.PostFormValue("description"),
		Confirm: want, Stale: got != "", Back: photoURL(e.Registry, e.Repository, e.Layer)}
	for _, k := range []string{"registry", "repository", "layer", "description", "alt", "keywords", "text", "restore"} {
		if v, ok := r.PostForm[k]; ok && len(v) > 0 {
			d.Fields = append(d.Fields, [2]string{k, v[0]})
		}
	}
	s.render(w, r, http.StatusConflict, "confirm", page{Title: "Replace a person's description?", Nav: "gallery", Data: d})
	return false
}
