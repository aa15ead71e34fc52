package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/queue"
)

// Publisher stores jobs durably.
type Publisher interface {
	Publish(ctx context.Context, jobs ...queue.Job) error
}

// TagRecorder records what was announced per tag (see [queue.TagBucket]);
// own reports an announcement of one of regscribe's own tag moves.
type TagRecorder interface {
	Announce(ctx context.Context, a queue.TagAnnouncement) (own bool, err error)
}

// Announcer puts the announcement of a push on the description stream
// (package feed), so the gallery shows the photo before it is described;
// *feed.Publisher is one.
type Announcer interface {
	Publish(ctx context.Context, e feed.Event, id string) (uint64, error)
}

var (
	_ Publisher   = (*queue.Publisher)(nil)
	_ TagRecorder = (*queue.Tags)(nil)
	_ Announcer   = (*feed.Publisher)(nil)
)

// DefaultMaxBody is the largest request body accepted.
const DefaultMaxBody = 1 << 20

// Options configure a [Notifier].
type Options struct {
	// Token registries must send as "Authorization: Bearer <token>" to
	// POST /v1/events, the default source. Required unless Sources are given;
	// without it /v1/events is not served.
	Token string
	// Registry is the registry (host[:port]) the default source speaks for.
	// Required with Token.
	Registry string
	// Aliases are other names the default source's events may use for
	// Registry (see [Source.Aliases]).
	Aliases []string
	// Sources are served at POST /v1/events/{name}, each with its own
	// format, registry and credentials.
	Sources []Source
	// MaxBody caps request bodies. If zero, DefaultMaxBody.
	MaxBody int64
	// Tags records, before the jobs are queued, each push and deletion of a
	// tag the events announce, so a worker that finds its tag on another
	// manifest knows whether a later push was announced. If nil, nothing
	// is recorded (workers then cannot tell, and act as without a record).
	Tags TagRecorder
	// Announce, if set, receives a queued event per manifest pushed, once
	// its jobs are stored. One that cannot be stored is logged: the job is
	// queued all the same, and its photo shows once described.
	Announce Announcer
	// Metrics counts requests and events. If nil, none are counted.
	Metrics *metrics.Metrics
	// ReadTimeout bounds reading one request's body. If zero, 10 s. (The
	// http.Server should bound headers with ReadHeaderTimeout.)
	ReadTimeout time.Duration
	// PublishTimeout bounds waiting for JetStream. If zero, 5 s.
	PublishTimeout time.Duration
	// Logger. If nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock (tests). If nil, time.Now.
	Now func() time.Time
}

// Notifier is the HTTP handler registries notify.
type Notifier struct {
	pub  Publisher
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	// sources by name; the default source (Options.Token) has the name "".
	sources map[string]*Source
}

// New returns a Notifier that publishes with pub. It refuses sources without
// credentials, with an unknown format or without a registry, and names used
// twice.
func New(pub Publisher, opts Options) (*Notifier, error) {
	if opts.Token == "" && len(opts.Sources) == 0 {
		return nil, errors.New("notifier: a token is required")
	}
	if opts.MaxBody == 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	if opts.PublishTimeout == 0 {
		opts.PublishTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Notifier{pub: pub, opts: opts, log: opts.Logger, mux: http.NewServeMux(), sources: map[string]*Source{}}
	if opts.Token != "" {
		if opts.Registry == "" {
			return nil, errors.New("notifier: the registry the events speak for is required (REGSCRIBE_REGISTRIES)")
		}
		def := Source{Format: FormatAuto, Registry: opts.Registry, Aliases: opts.Aliases, Auth: Auth{Bearer: opts.Token}}.normalize()
		if err := def.validateHosts(); err != nil {
			return nil, fmt.Errorf("notifier: default source: %w", err)
		}
		n.sources[""] = &def
		n.mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) { n.events(w, r, n.sources[""]) })
	}
	for _, s := range opts.Sources {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("notifier: %w", err)
		}
		if _, dup := n.sources[s.Name]; dup {
			return nil, fmt.Errorf("notifier: source name %q is used twice", s.Name)
		}
		s = s.normalize()
		n.sources[s.Name] = &s
	}
	if len(opts.Sources) > 0 {
		n.mux.HandleFunc("POST /v1/events/{name}", func(w http.ResponseWriter, r *http.Request) {
			src, ok := n.sources[r.PathValue("name")]
			if !ok || src.Name == "" {
				n.reply(w, http.StatusNotFound, Reply{Error: "not found"})
				return
			}
			n.events(w, r, src)
		})
	}
	n.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return n, nil
}

// ServeHTTP routes requests.
func (n *Notifier) ServeHTTP(w http.ResponseWriter, r *http.Request) { n.mux.ServeHTTP(w, r) }

// Reply is the JSON answer to a notification.
type Reply struct {
	// Queued is the number of jobs stored: one per manifest push and one
	// per manifest deletion.
	Queued int `json:"queued"`
	// Ignored is the number of events that made no job: neither pushes nor
	// manifest deletions (pulls, tag deletions, …), not manifests, Docker
	// images, regscribe's own artifacts and deletions, fallback tags,
	// repeats within the notification. (Each reason is logged at debug.)
	Ignored int `json:"ignored"`
	// Error says why the request was refused; it never carries internals.
	Error string `json:"error,omitempty"`
}

func (n *Notifier) events(w http.ResponseWriter, r *http.Request, src *Source) {
	log := n.log.With("source", src.Name, "remote", r.RemoteAddr)
	if err := src.Auth.checkHeader(r); err != nil {
		n.unauthorized(w, log, src, err)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(n.opts.ReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			n.reply(w, http.StatusRequestEntityTooLarge, Reply{Error: fmt.Sprintf("body over %d bytes", n.opts.MaxBody)})
		case errors.Is(err, os.ErrDeadlineExceeded):
			n.reply(w, http.StatusRequestTimeout, Reply{Error: "body not read in time"})
		default:
			n.reply(w, http.StatusBadRequest, Reply{Error: "could not read body"})
		}
		return
	}
	if err := src.Auth.checkSignature(r, body); err != nil {
		n.unauthorized(w, log, src, err)
		return
	}
	m := metaOf(r)
	format := src.Format
	if format == FormatAuto {
		if format, err = detect(body, m); err != nil {
			n.refuse(w, log, badRequest("%v", err))
			return
		}
	}
	events, err := decoders[format](body, m)
	if err != nil {
		n.refuse(w, log, badRequest("%v", err))
		return
	}
	now := n.opts.Now().UTC()
	jobs, ignored, err := makeJobs(events, src, format, now)
	if err != nil {
		n.refuse(w, log, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.opts.PublishTimeout)
	defer cancel()
	// Recorded before the jobs are queued: a worker always finds its push.
	own, err := n.recordTags(ctx, tagAnnouncements(events, src, now))
	if err != nil {
		log.Error("could not record the tags announced; the registry will retry", "err", err)
		n.reply(w, http.StatusServiceUnavailable, Reply{Error: "queue unavailable, retry later"})
		return
	}
	// regscribe's own write-backs (recorded tag moves) make no job: it
	// would find the description it moved the tag to.
	jobs = slices.DeleteFunc(jobs, func(j queue.Job) bool {
		if !j.Deleted && own[queue.TagAnnouncement{Repository: j.Repository, Tag: j.Tag, Digest: j.Digest}] {
			ignored = append(ignored, "regscribe's own write-back of "+j.Repository+":"+j.Tag)
			return true
		}
		return false
	})
	for _, why := range ignored {
		log.Debug("event ignored", "format", format, "reason", why)
	}
	rep := Reply{Queued: len(jobs), Ignored: len(ignored)}
	if len(jobs) > 0 {
		if err := n.pub.Publish(ctx, jobs...); err != nil {
			log.Error("could not queue jobs; the registry will retry", "err", err, "jobs", len(jobs))
			n.reply(w, http.StatusServiceUnavailable, Reply{Error: "queue unavailable, retry later"})
			return
		}
		for _, j := range jobs {
			msg := "job queued"
			if j.Deleted {
				msg = "deletion queued: search forgets the manifest once the registry no longer has it"
			}
			log.Info(msg, "format", format, "repository", j.Repository, "digest", j.Digest, "tag", j.Tag, "event", j.Event)
		}
		// Before the answer: an announcement stored after its job ran
		// could outlive the manifest's description or deletion.
		n.announce(ctx, log, jobs)
	}
	n.reply(w, http.StatusOK, rep)
}

// announce publishes a queued event per manifest the jobs push (jobs by
// tag only name none: they show once described).
func (n *Notifier) announce(ctx context.Context, log *slog.Logger, jobs []queue.Job) {
	if n.opts.Announce == nil {
		return
	}
	var events []feed.Event
	ids := map[string]string{}
	for _, j := range jobs {
		if j.Deleted || j.Digest == "" || j.Correction != nil {
			continue
		}
		i := slices.IndexFunc(events, func(e feed.Event) bool { return e.Repository == j.Repository && e.Digest == j.Digest })
		if i < 0 {
			events = append(events, feed.Event{Kind: feed.Queued, Registry: j.Registry, Repository: j.Repository, Digest: j.Digest, At: j.Received})
			i = len(events) - 1
			ids[j.Repository+"@"+j.Digest] = "queued-" + j.ID()
		}
		if j.Tag != "" && !slices.Contains(events[i].Tags, j.Tag) {
			events[i].Tags = append(events[i].Tags, j.Tag)
		}
	}
	for _, e := range events {
		if _, err := n.opts.Announce.Publish(ctx, e, ids[e.Repository+"@"+e.Digest]); err != nil {
			log.Warn("could not announce the push to the gallery; its photo shows once described", "repository", e.Repository, "digest", e.Digest, "err", err)
		}
	}
}

// recordTags records the tag changes announced, in order, and returns those
// of regscribe's own tag moves (by repository, tag and digest).
func (n *Notifier) recordTags(ctx context.Context, changes []queue.TagAnnouncement) (map[queue.TagAnnouncement]bool, error) {
	own := map[queue.TagAnnouncement]bool{}
	if n.opts.Tags == nil {
		return own, nil
	}
	for _, a := range changes {
		mine, err := n.opts.Tags.Announce(ctx, a)
		if err != nil {
			return nil, err
		}
		if mine {
			own[queue.TagAnnouncement{Repository: a.Repository, Tag: a.Tag, Digest: a.Digest}] = true
		}
	}
	return own, nil
}

func (n *Notifier) unauthorized(w http.ResponseWriter, log *slog.Logger, src *Source, err error) {
	if c := src.Auth.challenge(); c != "" {
		w.Header().Set("WWW-Authenticate", c)
	}
	n.reply(w, http.StatusUnauthorized, Reply{Error: err.Error()})
	log.Warn("notification refused", "reason", err.Error())
}

// refuse answers a requestError with its status and reason. A refusal for a
// foreign registry host is logged at warn: someone tried to point a worker
// elsewhere, or the source's aliases are incomplete.
func (n *Notifier) refuse(w http.ResponseWriter, log *slog.Logger, err error) {
	re := &requestError{status: http.StatusBadRequest, reason: "bad request"}
	errors.As(err, &re)
	n.reply(w, re.status, Reply{Error: re.reason})
	log.Warn("notification refused", "status", re.status, "reason", re.reason)
}

func (n *Notifier) reply(w http.ResponseWriter, status int, rep Reply) {
	switch {
	case status == http.StatusOK:
		n.opts.Metrics.Events("queued", rep.Queued)
		n.opts.Metrics.Events("ignored", rep.Ignored)
	case status == http.StatusServiceUnavailable:
		n.opts.Metrics.Events("unavailable", 1)
	default:
		n.opts.Metrics.Events("refused", 1)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rep)
}
