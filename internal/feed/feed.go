package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the stream and its subjects.
const (
	// Stream holds the description events.
	Stream = "REGSCRIBE_DESCRIPTIONS"
	// SubjectPrefix starts every event's subject.
	SubjectPrefix = "regscribe.descriptions."
	// Version is the schema version of [Event] written by this build.
	Version = 1
	// window is the stream's duplicate window: a report of one job message
	// published again (lost ack, redelivery) within it is stored once.
	window = 10 * time.Minute
)

// Kind says what an event reports.
type Kind string

// The kinds of event.
const (
	// Written: a worker wrote the photos' descriptions into the registry
	// (a model's, or a person's correction).
	Written Kind = "written"
	// Found: reprocess found the descriptions already in the registry
	// (backfill; no model was asked).
	Found Kind = "found"
	// Deleted: the manifest is gone from the registry; every entry of it,
	// by any describer, is to be removed.
	Deleted Kind = "deleted"
	// Refused: a worker read the manifest's layers and found no photo to
	// describe (a text file pushed with oras's default media type); Reason
	// says why. It is kept per manifest, never searched, and counted.
	Refused Kind = "refused"
	// Untagged: the tag the event lists (one) is gone from the repository
	// (deleted on its own: the manifest it pointed at stays); no manifest
	// of the repository carries it any more. The event names no digest.
	Untagged Kind = "untagged"
	// Queued: the registry announced a push of the manifest and its job is
	// queued (published by the notifier once the job is stored). It lets
	// the gallery show the photo before it is described; a description,
	// refusal or failure of the manifest supersedes it.
	Queued Kind = "queued"
	// Failed: a worker gave the manifest's job up (a dead letter); Reason
	// says why, and At is when the job's push was announced (the job's
	// received time). A description of the manifest supersedes it.
	Failed Kind = "failed"
	// Skipped: a worker read the manifest and found nothing to describe
	// that is not described already (a container image, a manifest the
	// selection leaves out): the announcement is over, nothing is shown.
	Skipped Kind = "skipped"
)

// Event is one message of the stream: what one describer said about the
// photos of one manifest, or that the manifest is gone.
//
// Schema, version 1 (JSON):
//
//	{
//	  "v": 1,
//	  "kind": "written",                // written | found | deleted | refused | untagged | queued | failed | skipped
//	  "registry": "127.0.0.1:5000",      // a configured registry
//	  "repository": "photos/pineapple",
//	  "digest": "sha256:…",             // the manifest that carries the description (annotation mode: the re-pushed one); none for untagged
//	  "tags": ["latest"],                // tags known to point at it (may be empty); untagged: the tags gone
//	  "replaces": "sha256:…",           // annotation mode: the manifest it was made from (see below)
//	  "by": "ollama/qwen2.5vl:3b",       // io.regscribe.model of the descriptions ("person:NAME" for a correction)
//	  "photos": [{…Photo…}],
//	  "reason": "not an image: …",       // refused and failed: why no photo was described
//	  "at": "2026-11-30T01:00:00Z"
//	}
//
// With replaces, the manifest is a copy of the replaced one with the
// descriptions of the photos listed changed: those photos' entries of the
// replaced manifest are superseded (history); the photos it does not list
// (an album's children not pushed again) are unchanged, and their entries
// move to the new manifest.
type Event struct {
	Version    int      `json:"v"`
	Kind       Kind     `json:"kind"`
	Registry   string   `json:"registry"`
	Repository string   `json:"repository"`
	Digest     string   `json:"digest"`
	Tags       []string `json:"tags,omitempty"`
	Replaces   string   `json:"replaces,omitempty"`
	By         string   `json:"by,omitempty"`
	Photos     []Photo  `json:"photos,omitempty"`
	// Reason is why a refused manifest holds no photo regscribe describes.
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Photo is the description of one image layer.
type Photo struct {
	// Manifest is the digest of the image manifest that holds the layer:
	// the event's Digest, or for an index (album) the child's.
	Manifest string `json:"manifest,omitempty"`
	// Layer is the image layer's digest and MediaType its media type.
	Layer     string `json:"layer"`
	MediaType string `json:"mediaType,omitempty"`
	// Title is the layer's org.opencontainers.image.title (its file name
	// when pushed with oras).
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description"`
	Alt         string   `json:"alt,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
	// Text is the text visible in the photo (io.regscribe.text).
	Text string `json:"text,omitempty"`
	// Model is io.regscribe.model: provider/model, or "person[:NAME]".
	Model   string    `json:"model"`
	Created time.Time `json:"created,omitzero"`
	// Stored is where the description is: [StoredAnnotation] or
	// "referrer sha256:…".
	Stored string `json:"stored"`
}

// StoredAnnotation is [Photo.Stored] of a description written into the
// manifest's annotations; a referrer's is "referrer " + its digest.
const StoredAnnotation = "annotation"

// Ref is registry/repository@digest (registry/repository:tag for untagged).
func (e Event) Ref() string {
	if e.Kind == Untagged {
		return e.Registry + "/" + e.Repository + ":" + strings.Join(e.Tags, ",")
	}
	return e.Registry + "/" + e.Repository + "@" + e.Digest
}

// Validate checks the fields every event needs.
func (e Event) Validate() error {
	switch {
	case e.Version != Version:
		return fmt.Errorf("description event version %d, want %d", e.Version, Version)
	case e.Kind != Written && e.Kind != Found && e.Kind != Deleted && e.Kind != Refused && e.Kind != Untagged &&
		e.Kind != Queued && e.Kind != Failed && e.Kind != Skipped:
		return fmt.Errorf("description event of unknown kind %q", e.Kind)
	case e.Kind == Untagged && (e.Registry == "" || e.Repository == "" || len(e.Tags) != 1 || e.Tags[0] == "" || e.Digest != ""):
		return errors.New("untagged event without registry, repository or its one tag, or with a digest")
	case e.Kind == Untagged:
		return nil
	case e.Registry == "" || e.Repository == "" || e.Digest == "":
		return errors.New("description event without registry, repository or digest")
	case (e.Kind == Refused || e.Kind == Failed) && e.Reason == "":
		return fmt.Errorf("%s description event without a reason", e.Kind)
	case (e.Kind == Written || e.Kind == Found) && e.By == "":
		return errors.New("description event without describer")
	}
	return nil
}

// Parse decodes and validates one event.
func Parse(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("decode description event: %w", err)
	}
	return e, e.Validate()
}

// ManifestKey is the subject token of one manifest.
func ManifestKey(registry, repository, digest string) string {
	sum := sha256.Sum256([]byte(registry + "/" + repository + "@" + digest))
	return hex.EncodeToString(sum[:16])
}

// Subject is the subject of e: one per manifest and describer, so the
// stream keeps the newest event of each (and one deletion, one refusal,
// one announcement, one failure, one per tag untagged).
func Subject(e Event) string {
	if e.Kind == Untagged {
		return SubjectPrefix + ManifestKey(e.Registry, e.Repository, "tag:"+e.Tags[0]) + ".untagged"
	}
	m := SubjectPrefix + ManifestKey(e.Registry, e.Repository, e.Digest) + "."
	switch e.Kind {
	case Deleted:
		return m + "deleted"
	case Refused:
		return m + refusedToken
	case Queued, Failed, Skipped:
		return m + string(e.Kind)
	}
	sum := sha256.Sum256([]byte(e.By))
	return m + hex.EncodeToString(sum[:8])
}

// EnsureStream creates or updates the description stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	if replicas == 0 {
		replicas = 1
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              Stream,
		Description:       "regscribe: the newest description of each photo by each describer, and deletions",
		Subjects:          []string{SubjectPrefix + ">"},
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		MaxMsgsPerSubject: 1,
		Duplicates:        window,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", Stream, err)
	}
	return s, nil
}

// Publisher puts events on the stream.
type Publisher struct {
	js jetstream.JetStream

	mu sync.Mutex
	// stream is the handle of the stream, looked up once (a look-up is a
	// request): purges and reads name the stream only.
	stream jetstream.Stream
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// handle returns the stream's handle, looking it up the first time.
func (p *Publisher) handle(ctx context.Context) (jetstream.Stream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stream == nil {
		s, err := p.js.Stream(ctx, Stream)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", Stream, err)
		}
		p.stream = s
	}
	return p.stream, nil
}

var publishRetries = []jetstream.PublishOpt{jetstream.WithRetryAttempts(60), jetstream.WithRetryWait(250 * time.Millisecond)}

// Publish stores e and returns its stream sequence. id, when not empty,
// is the message id (e.g. "desc-<job seq>"): publishing the same id again
// within the duplicate window stores nothing new. The events e supersedes
// are purged ([Publisher.supersede]).
func (p *Publisher) Publish(ctx context.Context, e Event, id string) (uint64, error) {
	data, opts, err := encode(&e, id)
	if err != nil {
		return 0, err
	}
	ack, err := p.js.Publish(ctx, Subject(e), data, opts...)
	if err != nil {
		return 0, fmt.Errorf("publish description event for %s: %w", e.Ref(), err)
	}
	p.supersede(ctx, e, ack.Sequence)
	return ack.Sequence, nil
}

// supersede purges the events stored before seq that e, stored at seq,
// supersedes: a deletion the events of its manifest ([Publisher.purge]); a description (written
// or found) the refusal of its manifest and of the manifest it replaces (a
// manifest refused, then described after all: by rules that read more, or
// re-pushed with a description), so the refusals the stream holds are
// those the indexes hold (an index drops a refusal when it applies such a
// description). Every index applies e as superseding them already, so a
// failed purge only leaves them taking room, and a refusal counted by
// `regscribe status`: it is not an error.
//
// Announcements (queued), failures and skips are not purged: each is one
// small event per manifest, and an index applies a later description, a
// refusal or a skip as superseding them. (Purging them on every push, as
// descriptions are written, made the indexes' consumers lose deliveries
// under the fault soak.)
func (p *Publisher) supersede(ctx context.Context, e Event, seq uint64) {
	var subjects []string
	switch e.Kind {
	case Deleted:
		p.purge(ctx, e, seq)
		return
	case Written, Found:
		subjects = []string{Subject(Event{Kind: Refused, Registry: e.Registry, Repository: e.Repository, Digest: e.Digest})}
		if e.Replaces != "" && e.Replaces != e.Digest {
			subjects = append(subjects, Subject(Event{Kind: Refused, Registry: e.Registry, Repository: e.Repository, Digest: e.Replaces}))
		}
	}
	if len(subjects) == 0 {
		return
	}
	s, err := p.handle(ctx)
	if err != nil {
		return
	}
	for _, subject := range subjects {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(seq))
	}
}

// purge removes the events of the deleted manifest stored before its
// tombstone (at seq), unless another manifest's events may rely on them
// ([reliedOn]): an index rebuilt from the start of the stream needs them
// then. The tombstone supersedes them in every index either way, so a
// purge that fails, or is left out, only leaves them taking room.
func (p *Publisher) purge(ctx context.Context, e Event, seq uint64) {
	s, err := p.handle(ctx)
	if err != nil {
		return
	}
	events, ok := storedEvents(ctx, s, e.Registry, e.Repository, e.Digest, seq)
	if !ok || reliedOn(ctx, s, events) {
		return
	}
	prefix := SubjectPrefix + ManifestKey(e.Registry, e.Repository, e.Digest) + ".*"
	_ = s.Purge(ctx, jetstream.WithPurgeSubject(prefix), jetstream.WithPurgeSequence(seq))
}

// reliedOn reports whether the events of one manifest may be what other
// events rely on:
//   - they hold annotation descriptions of an album's children, or of two
//     photos or more: a manifest that replaced it may list only some
//     photos and carry the others over unchanged (an album's children not
//     pushed again). An image manifest described in one photo is never
//     carried from: an event that replaces it lists its photo;
//   - they replace a manifest whose events are on the stream: they
//     supersede its descriptions (history), which are current again
//     without them.
//
// When the stream cannot be read, they are.
func reliedOn(ctx context.Context, s jetstream.Stream, events []Event) bool {
	annotated := map[string]bool{}
	for _, e := range events {
		for _, p := range e.Photos {
			if p.Stored != StoredAnnotation {
				continue
			}
			if p.Manifest != "" && p.Manifest != e.Digest {
				return true // an album's child
			}
			annotated[p.Layer] = true
		}
		if e.Replaces != "" && e.Replaces != e.Digest {
			older, ok := storedEvents(ctx, s, e.Registry, e.Repository, e.Replaces, math.MaxUint64)
			if !ok || slices.ContainsFunc(older, func(o Event) bool { return o.Kind == Written || o.Kind == Found }) {
				// Its descriptions, which these supersede (its push's
				// announcement, failure or skip relies on nothing).
				return true
			}
		}
	}
	return len(annotated) > 1
}

// storedEvents are the description events of one manifest the stream
// holds before seq (its tombstone left out); ok is false when they cannot
// be read.
func storedEvents(ctx context.Context, s jetstream.Stream, registry, repository, digest string, seq uint64) ([]Event, bool) {
	prefix := SubjectPrefix + ManifestKey(registry, repository, digest) + ".*"
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix))
	if err != nil {
		return nil, false
	}
	var out []Event
	for subject := range info.State.Subjects {
		if IsDeletedSubject(subject) {
			continue
		}
		m, err := s.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, false
		}
		if e, err := Parse(m.Data); err == nil && m.Sequence < seq {
			out = append(out, e)
		}
	}
	return out, true
}

// JobID is the message id of the description event of job message seq,
// part n of its events (an album's children are one event each).
func JobID(seq uint64, n int) string {
	return "desc-" + strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(n)
}

// refusedToken ends the subject of a refusal.
const refusedToken = "refused"

// Refusal returns the refusal of the manifest digest of
// registry/repository, when a worker stored one: why it holds no photo.
func Refusal(ctx context.Context, js jetstream.JetStream, registry, repository, digest string) (Event, bool, error) {
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return Event{}, false, fmt.Errorf("open %s: %w", Stream, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, Subject(Event{Kind: Refused, Registry: registry, Repository: repository, Digest: digest}))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("read the refusal of %s/%s@%s: %w", registry, repository, digest, err)
	}
	e, err := Parse(m.Data)
	if err != nil {
		return Event{}, false, err
	}
	return e, true, nil
}

// Refusals counts the manifests refused (one refusal each, until the
// manifest is deleted).
func Refusals(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", Stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(SubjectPrefix+"*."+refusedToken))
	if err != nil {
		return 0, fmt.Errorf("count the refusals in %s: %w", Stream, err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// IsDeletedSubject reports whether subject is a deletion's.
func IsDeletedSubject(subject string) bool { return strings.HasSuffix(subject, ".deleted") }

// Fill publishes a found event only where it adds something: when the
// stream holds no event of the same manifest and describer, or only one
// whose descriptions are older. A description a worker wrote while
// reprocess was planning is newer than what reprocess read, and a found
// event must never bury it (the stream keeps one event per manifest and
// describer). The check and the publish are one step: the publish expects
// the subject's last sequence the check saw, so an event stored in
// between makes Fill publish nothing. It reports whether e was stored.
func (p *Publisher) Fill(ctx context.Context, e Event, id string) (bool, error) {
	s, err := p.handle(ctx)
	if err != nil {
		return false, err
	}
	var last uint64
	m, err := s.GetLastMsgForSubject(ctx, Subject(e))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return false, fmt.Errorf("read the description stream for %s: %w", e.Ref(), err)
	default:
		if old, err := Parse(m.Data); err == nil && !newest(e).After(newest(old)) {
			return false, nil
		}
		last = m.Sequence
	}
	data, opts, err := encode(&e, id)
	if err != nil {
		return false, err
	}
	ack, err := p.js.Publish(ctx, Subject(e), data, append(opts, jetstream.WithExpectLastSequencePerSubject(last))...)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("publish description event for %s: %w", e.Ref(), err)
	}
	p.supersede(ctx, e, ack.Sequence)
	return !ack.Duplicate, nil
}

// encode stamps e (version, time), checks it and returns its bytes and the
// publish options: retries, and the message id when there is one.
func encode(e *Event, id string) ([]byte, []jetstream.PublishOpt, error) {
	e.Version = Version
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	if err := e.Validate(); err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, nil, err
	}
	opts := append([]jetstream.PublishOpt{}, publishRetries...)
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	return data, opts, nil
}

// newest is when the newest description of e was made (its time when none
// says).
func newest(e Event) time.Time {
	var t time.Time
	for _, p := range e.Photos {
		if p.Created.After(t) {
			t = p.Created
		}
	}
	if t.IsZero() {
		return e.At
	}
	return t
}
