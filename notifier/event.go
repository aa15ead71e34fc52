package notifier

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/regscribe/regscribe/internal/queue"
)

// mediaTypeDescription is the artifact type of the descriptions regscribe
// itself pushes: their pushes make no jobs.
const mediaTypeDescription = "application/vnd.regscribe.description.v1+json"

// manifestMediaTypes are the target media types of manifest pushes that
// make jobs.
var manifestMediaTypes = map[string]bool{
	"application/vnd.oci.image.manifest.v1+json": true,
	"application/vnd.oci.image.index.v1+json":    true,
}

// dockerMediaTypes are Docker's manifest media types (schema 2 and its
// manifest list). Their pushes make no job: a Docker image's layers are
// filesystem tarballs, never a photo (workers describe OCI image manifests
// and indexes only), so a job would only be fetched and skipped.
var dockerMediaTypes = map[string]bool{
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

var (
	digestRE     = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	repositoryRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE        = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	fallbackTag  = regexp.MustCompile(`^sha256-[a-f0-9]{64}$`)
)

// event is one announcement, in any format, reduced to what makes a job.
type event struct {
	// skip says why the event announces neither a push nor a manifest's
	// deletion (a pull, a tag deletion, another event type); "" otherwise.
	// Skipped events are neither validated nor queued.
	skip string
	// deleted: the event announces that the manifest digest (repository,
	// digest; tag where the format names one) was deleted. Its job asks
	// the worker to check that the manifest is gone and to remove it from
	// search; nothing is described.
	deleted    bool
	repository string
	digest     string
	tag        string
	// mediaType and artifactType of the pushed manifest, where the format
	// tells them.
	mediaType    string
	artifactType string
	// host is the registry host the event names, where the format names one
	// that the registry itself fills in; "" otherwise.
	host string
	// manifestOnly: the format also announces blob pushes, so a push whose
	// media type is not a manifest's (or is missing) is not a manifest push.
	manifestOnly bool
	// id identifies the announcement, as the format does (the job's
	// Event): the same announcement delivered again has the same id. ""
	// when the format gives none; the job then gets a unique one.
	id string
	// at is when the event happened, where the format says (Distribution's
	// timestamp); zero otherwise.
	at time.Time
}

// meta is what decoders may read of a request besides its body.
type meta struct {
	contentType    string // Content-Type as sent
	ceType         string // Ce-Type: a CloudEvent in HTTP binary mode
	ceID           string // Ce-Id: that CloudEvent's id
	githubEvent    string // X-GitHub-Event
	githubDelivery string // X-GitHub-Delivery: kept by GitHub's redeliveries
}

func metaOf(r *http.Request) meta {
	return meta{
		contentType:    r.Header.Get("Content-Type"),
		ceType:         r.Header.Get("Ce-Type"),
		ceID:           r.Header.Get("Ce-Id"),
		githubEvent:    r.Header.Get("X-GitHub-Event"),
		githubDelivery: r.Header.Get("X-GitHub-Delivery"),
	}
}

// Prefixes of the job's Event, by what identifies the announcement.
const (
	eventID       = "id:"       // the event's own id (Distribution, ACR, CloudEvents)
	eventDelivery = "delivery:" // GitHub's X-GitHub-Delivery
	eventOccurAt  = "occur_at:" // Harbor's default payload: the event's time
	eventUnique   = "unique:"   // nothing identifies it: drawn by the notifier
)

// idOf is prefix+value, or "" when value is empty.
func idOf(prefix, value string) string {
	if value == "" {
		return ""
	}
	return prefix + value
}

// decoder turns a request body into events. Decoders are pure: no I/O, no
// clock, no configuration.
type decoder func(body []byte, m meta) ([]event, error)

var decoders = map[string]decoder{
	FormatDistribution: decodeDistribution,
	FormatACR:          decodeACR,
	FormatHarbor:       decodeHarbor,
	FormatZot:          decodeZot,
	FormatGitHub:       decodeGitHub,
	FormatQuay:         decodeQuay,
	FormatDockerHub:    decodeDockerHub,
}

const mediaTypeCloudEvents = "application/cloudevents+json"

// requestError is a refusal: an HTTP status and a reason safe to send.
type requestError struct {
	status int
	reason string
}

func (e *requestError) Error() string { return e.reason }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, reason: fmt.Sprintf(format, args...)}
}

// checkContentType accepts a missing content type or one of want.
func checkContentType(contentType string, want ...string) error {
	if contentType == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil {
		for _, w := range want {
			if mt == w {
				return nil
			}
		}
	}
	return fmt.Errorf("content type %q: want %s", truncate(contentType), strings.Join(want, " or "))
}

// detect recognises the format of a request for [FormatAuto].
func detect(body []byte, m meta) (string, error) {
	switch {
	case m.ceType != "":
		return cloudEventFormat(m.ceType)
	case m.githubEvent != "":
		return FormatGitHub, nil
	}
	mt := ""
	if m.contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(m.contentType); err != nil {
			mt = "invalid"
		}
	}
	switch mt {
	case MediaTypeDistributionEvents:
		return FormatDistribution, nil
	case "", "application/json", mediaTypeCloudEvents:
	default:
		return "", fmt.Errorf("content type %q: want %s, application/json or %s", truncate(m.contentType), MediaTypeDistributionEvents, mediaTypeCloudEvents)
	}
	var probe struct {
		SpecVersion     json.RawMessage `json:"specversion"`
		Type            json.RawMessage `json:"type"`
		EventData       json.RawMessage `json:"event_data"`
		RegistryPackage json.RawMessage `json:"registry_package"`
		Package         json.RawMessage `json:"package"`
		PushData        json.RawMessage `json:"push_data"`
		UpdatedTags     json.RawMessage `json:"updated_tags"`
		DockerURL       json.RawMessage `json:"docker_url"`
		Events          json.RawMessage `json:"events"`
		Action          json.RawMessage `json:"action"`
		Target          json.RawMessage `json:"target"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return "", fmt.Errorf("body is not a JSON notification: %s", jsonError(err))
	}
	switch {
	case probe.SpecVersion != nil:
		var typ string
		if json.Unmarshal(probe.Type, &typ) != nil || typ == "" {
			return "", errors.New(`CloudEvent has no "type"`)
		}
		return cloudEventFormat(typ)
	case probe.EventData != nil:
		return FormatHarbor, nil
	case probe.RegistryPackage != nil || probe.Package != nil:
		return FormatGitHub, nil
	case probe.PushData != nil:
		return FormatDockerHub, nil
	case probe.UpdatedTags != nil || probe.DockerURL != nil:
		return FormatQuay, nil
	case probe.Events != nil || (probe.Action != nil && probe.Target != nil):
		return FormatDistribution, nil
	}
	return "", errors.New("body is not a notification regscribe reads (Distribution, ACR, Harbor, zot, GitHub, Quay or Docker Hub)")
}

// cloudEventFormat tells the format of a CloudEvent from its type.
func cloudEventFormat(typ string) (string, error) {
	switch {
	case strings.HasPrefix(typ, "harbor."):
		return FormatHarbor, nil
	case strings.HasPrefix(typ, "zotregistry."):
		return FormatZot, nil
	}
	return "", fmt.Errorf("CloudEvent type %q is not one regscribe reads (harbor.*, zotregistry.*); name the format with a source", truncate(typ))
}

// validate refuses events whose fields could not name a real manifest.
func (e event) validate() error {
	what := "push"
	if e.deleted {
		what = "deletion"
	}
	switch {
	case e.repository == "":
		return errors.New(what + " names no repository")
	case len(e.repository) > 255 || !repositoryRE.MatchString(e.repository):
		return fmt.Errorf("repository %q is not a valid name", truncate(e.repository))
	case e.digest != "" && !digestRE.MatchString(e.digest):
		return fmt.Errorf("digest %q is not a digest", truncate(e.digest))
	case e.tag != "" && !tagRE.MatchString(e.tag):
		return fmt.Errorf("tag %q is not a valid tag", truncate(e.tag))
	case e.digest == "" && e.tag == "":
		return errors.New(what + " names neither digest nor tag")
	}
	return nil
}

// ignore says why a valid push or deletion makes no job, or "" when it
// does.
func (e event) ignore() string {
	switch {
	case e.skip != "":
		return e.skip
	case dockerMediaTypes[e.mediaType]:
		return "a Docker image (" + e.mediaType + "), which holds no photo"
	case (e.manifestOnly || e.mediaType != "") && !manifestMediaTypes[e.mediaType]:
		return "not a manifest push (" + e.mediaType + ")"
	case e.mediaType == mediaTypeDescription || e.artifactType == mediaTypeDescription:
		return "regscribe's own description artifact"
	case fallbackTag.MatchString(e.tag):
		return "referrers fallback index tag"
	}
	return ""
}

// makeJobs turns the events of one request into jobs for src: every push
// and deletion is validated and host-checked first, so a request with one
// bad event queues nothing. Pushes (or deletions) announced twice in one
// request make one job. ignored says why each event that made no job made
// none. A deletion makes a job with Deleted set.
//
// Each job's Event is its announcement's id; a push whose format gives
// none gets a unique one, so a repeated push of a tag (Quay) is never
// dropped as a duplicate.
func makeJobs(events []event, src *Source, format string, now time.Time) (jobs []queue.Job, ignored []string, err error) {
	for i, e := range events {
		if e.skip != "" {
			continue
		}
		if err := e.validate(); err != nil {
			return nil, nil, badRequest("event %d: %v", i, err)
		}
		if e.host != "" && !src.speaksFor(e.host) {
			return nil, nil, &requestError{status: http.StatusForbidden,
				reason: fmt.Sprintf("event %d names registry %s; this source speaks for %s", i, truncate(e.host), src.Registry)}
		}
	}
	for _, e := range events {
		if why := e.ignore(); why != "" {
			ignored = append(ignored, why)
			continue
		}
		if e.id == "" {
			e.id = eventUnique + rand.Text()
		}
		j := queue.Job{
			Version:    queue.JobVersion,
			Registry:   src.Registry,
			Repository: e.repository,
			Digest:     e.digest,
			Tag:        e.tag,
			MediaType:  e.mediaType,
			Source:     format,
			Received:   now,
			Event:      e.id,
			Deleted:    e.deleted,
		}
		if containsJob(jobs, j) {
			ignored = append(ignored, "announced twice in one notification")
			continue
		}
		jobs = append(jobs, j)
	}
	return jobs, ignored, nil
}

// tagAnnouncements are the tag changes events announce, in order: every
// push of a manifest (a Docker image too: it takes the tag all the same)
// naming both tag and digest, and every deletion naming a tag. Call it on
// events makeJobs accepted. A change without a time of its own happened at
// now.
func tagAnnouncements(events []event, src *Source, now time.Time) []queue.TagAnnouncement {
	var out []queue.TagAnnouncement
	for _, e := range events {
		if e.skip != "" || e.tag == "" || fallbackTag.MatchString(e.tag) {
			continue
		}
		notManifest := (e.manifestOnly || e.mediaType != "") && !manifestMediaTypes[e.mediaType] && !dockerMediaTypes[e.mediaType]
		if !e.deleted && (e.digest == "" || notManifest) {
			continue
		}
		a := queue.TagAnnouncement{Registry: src.Registry, Repository: e.repository, Tag: e.tag, Event: e.id, At: e.at, Deleted: e.deleted}
		if !e.deleted {
			a.Digest = e.digest
		}
		if a.At.IsZero() {
			a.At = now
		}
		out = append(out, a)
	}
	return out
}

func containsJob(jobs []queue.Job, j queue.Job) bool {
	for _, o := range jobs {
		if o.Repository == j.Repository && o.Digest == j.Digest && o.Tag == j.Tag && o.Deleted == j.Deleted {
			return true
		}
	}
	return false
}

// hostOf returns the host of a reference or URL ("harbor.example.com" of
// "harbor.example.com/team/app:v1"), lower-cased.
func hostOf(ref string) string {
	if _, rest, ok := strings.Cut(ref, "://"); ok {
		ref = rest
	}
	host, _, _ := strings.Cut(ref, "/")
	return strings.ToLower(host)
}

// tagOrDigest splits a reference that is either a tag or a digest (zot's
// reference, Harbor's tag of a by-digest push).
func tagOrDigest(ref string) (tag, digest string) {
	if strings.Contains(ref, ":") {
		return "", ref
	}
	return ref, ""
}

// jsonError describes why a body could not be decoded in terms of the JSON
// sent (field path, JSON type), never of regscribe's Go types.
func jsonError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		want := jsonKind(typ.Type)
		if typ.Field == "" {
			return fmt.Sprintf("a JSON %s where %s was expected", typ.Value, want)
		}
		return fmt.Sprintf("%s is a JSON %s, want %s", truncate(typ.Field), typ.Value, want)
	}
	return "invalid JSON"
}

// jsonKind names a Go type as the JSON it decodes from.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a string"
		}
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a value"
}

func truncate(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
