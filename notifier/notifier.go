package notifier

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/regscribe/regscribe/internal/queue"
)

// Publisher stores jobs durably.
type Publisher interface {
	Publish(ctx context.Context, jobs ...queue.Job) error
}

var _ Publisher = (*queue.Publisher)(nil)

// DefaultMaxBody is the largest request body accepted.
const DefaultMaxBody = 1 << 20

// Options configure a [Notifier].
type Options struct {
	// Token registries must send as "Authorization: Bearer <token>". Required.
	Token string
	// Registry is the configured registry (host[:port]) the events speak for.
	Registry string
	// MaxBody caps request bodies. If zero, DefaultMaxBody.
	MaxBody int64
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
}

// New returns a Notifier that publishes with pub.
func New(pub Publisher, opts Options) (*Notifier, error) {
	if opts.Token == "" {
		return nil, errors.New("notifier: a token is required")
	}
	if opts.Registry == "" {
		return nil, errors.New("notifier: the registry the events speak for is required (REGSCRIBE_REGISTRIES)")
	}
	if opts.MaxBody == 0 {
		opts.MaxBody = DefaultMaxBody
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
	n := &Notifier{pub: pub, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	n.mux.HandleFunc("POST /v1/events", n.events)
	n.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return n, nil
}

// ServeHTTP routes requests.
func (n *Notifier) ServeHTTP(w http.ResponseWriter, r *http.Request) { n.mux.ServeHTTP(w, r) }

// Reply is the JSON answer to a notification.
type Reply struct {
	Queued  int    `json:"queued"`
	Ignored int    `json:"ignored"`
	Error   string `json:"error,omitempty"`
}

func (n *Notifier) events(w http.ResponseWriter, r *http.Request) {
	if !n.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="regscribe"`)
		n.reply(w, http.StatusUnauthorized, Reply{Error: "missing or wrong bearer token"})
		n.log.Warn("notification refused: missing or wrong token", "remote", r.RemoteAddr)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			n.reply(w, http.StatusRequestEntityTooLarge, Reply{Error: fmt.Sprintf("body over %d bytes", n.opts.MaxBody)})
			return
		}
		n.reply(w, http.StatusBadRequest, Reply{Error: "could not read body"})
		return
	}
	events, err := decodeDistribution(r.Header.Get("Content-Type"), body)
	if err != nil {
		n.reply(w, http.StatusBadRequest, Reply{Error: err.Error()})
		n.log.Warn("notification refused", "err", err, "remote", r.RemoteAddr)
		return
	}
	now := n.opts.Now().UTC()
	var jobs []queue.Job
	seen := map[string]bool{}
	for _, e := range events {
		if reason := e.ignore(); reason != "" {
			n.log.Debug("event ignored", "reason", reason, "repository", e.Target.Repository, "digest", e.Target.Digest)
			continue
		}
		j := queue.Job{
			Version:    queue.JobVersion,
			Registry:   n.opts.Registry,
			Repository: e.Target.Repository,
			Digest:     e.Target.Digest,
			Tag:        e.Target.Tag,
			MediaType:  e.Target.MediaType,
			Source:     SourceDistribution,
			Received:   now,
		}
		if seen[j.ID()] {
			continue
		}
		seen[j.ID()] = true
		jobs = append(jobs, j)
	}
	rep := Reply{Queued: len(jobs), Ignored: len(events) - len(jobs)}
	if len(jobs) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), n.opts.PublishTimeout)
		defer cancel()
		if err := n.pub.Publish(ctx, jobs...); err != nil {
			n.log.Error("could not queue jobs; the registry will retry", "err", err, "jobs", len(jobs))
			n.reply(w, http.StatusServiceUnavailable, Reply{Error: "queue unavailable, retry later"})
			return
		}
		for _, j := range jobs {
			n.log.Info("job queued", "repository", j.Repository, "digest", j.Digest, "tag", j.Tag)
		}
	}
	n.reply(w, http.StatusOK, rep)
}

func (n *Notifier) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(n.opts.Token)) == 1
}

func (n *Notifier) reply(w http.ResponseWriter, status int, rep Reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rep)
}
