package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/outage"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/internal/thumb"
)

// ContentSecurityPolicy is sent with every response: no inline script or
// style, nothing from another origin, no framing.
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure [New].
type Options struct {
	// Catalog is the search index. Required.
	Catalog Catalog
	// JetStream holds the job queue, the dead letters and the description
	// stream. Required.
	JetStream jetstream.JetStream
	// Registry reaches the configured registries (thumbnails, reprocess
	// plans). Required.
	Registry *registry.Client
	// Registries are the configured registries (host[:port]), listed on the
	// front page even before they hold a photo.
	Registries []string
	// Model is the configured describer, provider/model as the workers
	// write it ("ollama/qwen2.5vl:3b"): a reprocess started here queues the
	// photos it has not described.
	Model string
	// Referrer is true when the workers write referrers (REGSCRIBE_MODE).
	Referrer bool
	// Leases serialise reprocess runs of one repository across processes
	// (package lease). Required.
	Leases reprocess.Locker
	// ThumbDir is the thumbnail cache's directory. Required.
	ThumbDir string
	// ThumbCacheBytes bounds the thumbnail cache. If zero, 256 MiB.
	ThumbCacheBytes int64
	// MaxBlobBytes is the largest layer a thumbnail is made from. If zero, 50 MiB.
	MaxBlobBytes int64
	// Token is REGSCRIBE_WEB_TOKEN. Empty: no credentials, and only
	// loopback host names are served (call [CheckExposure] on the listen
	// address first).
	Token string
	// Log receives errors. If nil, slog.Default(). The token is never logged.
	Log *slog.Logger
}

// Server is the web address's handler.
type Server struct {
	opts       Options
	mux        *http.ServeMux
	pages      map[string]*template.Template
	thumbs     *thumb.Cache
	csrfSecret []byte
	static     http.Handler
	// blocks are the lists' blocks read lately (photo pages' steps).
	blocks blocks

	ctx    context.Context
	cancel context.CancelFunc
	runs   *runs
	wg     sync.WaitGroup
	// outages are the model's outages the workers report (package
	// outage), for the banner of every page.
	outages *outage.Follower
}

// New returns the web address's handler. Call Close when done: it stops the
// reprocess runs started from the jobs page (their queued jobs stay queued).
func New(opts Options) (*Server, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("web: no catalog")
	case opts.JetStream == nil:
		return nil, errors.New("web: no JetStream")
	case opts.Registry == nil:
		return nil, errors.New("web: no registry client")
	case opts.Leases == nil:
		return nil, errors.New("web: no leases")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	thumbs, err := thumb.New(thumb.Options{
		Dir: opts.ThumbDir, MaxBytes: opts.ThumbCacheBytes, Registry: opts.Registry, MaxBlobBytes: opts.MaxBlobBytes, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), thumbs: thumbs, csrfSecret: make([]byte, 32), runs: newRuns()}
	if _, err := rand.Read(s.csrfSecret); err != nil {
		return nil, err
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	s.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.outages = outage.Follow(s.ctx, opts.JetStream, opts.Log)
	s.routes()
	return s, nil
}

// Close stops the reprocess runs this server started and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /{$}", s.home)
	m.HandleFunc("GET /r/{registry}/{repository...}", s.repository)
	m.HandleFunc("GET /p/{registry}/{ref...}", s.photo)
	m.HandleFunc("GET /search", s.search)
	m.HandleFunc("GET /jobs", s.jobs)
	m.HandleFunc("POST /jobs/retry", s.retry)
	m.HandleFunc("POST /jobs/reprocess", s.startReprocess)
	m.HandleFunc("GET /jobs/runs/{id}", s.run)
	m.HandleFunc("GET /jobs/runs/{id}/events", s.runEvents)
	m.HandleFunc("POST /actions/describe", s.describeAgain)
	m.HandleFunc("POST /actions/correct", s.correct)
	m.HandleFunc("GET /thumbs/{size}/{registry}/{ref...}", s.thumbnail)
	m.HandleFunc("GET /download/{registry}/{ref...}", s.download)
	m.HandleFunc("GET /like/{registry}/{ref...}", s.like)
	m.HandleFunc("GET /v1/search", s.apiSearch)
	m.Handle("GET /static/", s.staticFiles())
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	m.HandleFunc("/", s.notFound)
}

// staticFiles serves the embedded assets; they change only with the binary.
func (s *Server) staticFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		s.static.ServeHTTP(w, r)
	})
}

// ServeHTTP applies the security headers, credentials and CSRF checks to
// every request, then routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	user, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, user))
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
		if err := s.checkPost(r); err != nil {
			s.fail(w, r, http.StatusForbidden, "This form cannot be sent", err)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// page is what every page template gets.
type page struct {
	Title string
	// Query is the search box's text.
	Query string
	// Nav is the current section: "gallery", "search" or "jobs".
	Nav   string
	CSRF  string
	Flash string
	Data  any
	// Outages are the models the workers cannot reach, and JobsWaiting
	// the jobs that wait (queued, in flight, waiting for a retry): the
	// banner.
	Outages     []outage.Outage
	JobsWaiting int
}

// render writes page name with data.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.CSRF = s.csrfToken(userOf(r.Context()))
	if p.Flash == "" {
		p.Flash = flashes[r.URL.Query().Get("flash")]
	}
	if p.Outages = s.outages.Current(); len(p.Outages) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		if st, err := queue.ReadStatus(ctx, s.opts.JetStream); err == nil {
			p.JobsWaiting = int(st.Queued + st.InFlight + st.WaitingRetry)
		}
		cancel()
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.opts.Log.Error("render page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// flashes are the messages a redirect can ask the next page to show, by
// key: a redirect never carries text of its own into a page.
var flashes = map[string]string{
	"corrected":     "Your description is written and searchable.",
	"restored":      "The earlier description is back, written as a correction: automatic runs keep it.",
	"correcting":    "Your description is queued; it shows here once a worker has written it to the registry.",
	"describing":    "Queued to be described again; the new description shows here once a worker has written it.",
	"retried":       "The failed job is queued again.",
	"retried-all":   "Every failed job is queued again.",
	"retried-shown": "The failed jobs that were listed are queued again.",
	"retried-batch": "A batch of failed jobs is queued again; the rest are still listed.",
	"retry-partial": "Some failed jobs could not be queued again; they are still listed.",
}

type errorData struct {
	Status  int
	Heading string
	Detail  string
}

// fail shows an error page (and logs server-side failures).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, heading string, err error) {
	if status >= 500 {
		s.opts.Log.Error(heading, "path", r.URL.Path, "err", err)
	}
	detail := ""
	if err != nil {
		detail = err.Error()
	}
	s.render(w, r, status, "error", page{Title: heading, Data: errorData{Status: status, Heading: heading, Detail: detail}})
}

// registryName is the name the index knows a registry by, whichever of
// its names a page's address or a form uses (registry.Names): one registry
// is one registry in the gallery.
func (s *Server) registryName(host string) string { return s.opts.Registry.Canonical(host) }

// splitRef splits "repository@digest".
func splitRef(ref string) (repository, digest string, err error) {
	i := strings.LastIndex(ref, "@")
	if i <= 0 || i == len(ref)-1 {
		return "", "", fmt.Errorf("%q is not repository@digest", ref)
	}
	return ref[:i], ref[i+1:], nil
}
