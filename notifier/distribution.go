package notifier

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"regexp"
	"strings"
)

// SourceDistribution names CNCF Distribution's notification format.
const SourceDistribution = "distribution"

// MediaTypeDistributionEvents is the content type of Distribution's envelopes.
const MediaTypeDistributionEvents = "application/vnd.docker.distribution.events.v2+json"

// manifestMediaTypes are the target media types of manifest pushes.
var manifestMediaTypes = map[string]bool{
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

// distributionEvent is one event of a Distribution envelope (the fields regscribe reads).
type distributionEvent struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
}

var (
	digestRE     = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	repositoryRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE        = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	fallbackTag  = regexp.MustCompile(`^sha256-[a-f0-9]{64}$`)
)

// decodeDistribution decodes an envelope ({"events": [...]}) or, as ACR
// sends it, a single event object.
func decodeDistribution(contentType string, body []byte) ([]distributionEvent, error) {
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || (mt != MediaTypeDistributionEvents && mt != "application/json") {
			return nil, fmt.Errorf("content type %q: want %s", contentType, MediaTypeDistributionEvents)
		}
	}
	var env struct {
		Events *[]distributionEvent `json:"events"`
		Action string               `json:"action"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("body is not a notification envelope: %w", err)
	}
	var events []distributionEvent
	switch {
	case env.Events != nil:
		events = *env.Events
	case env.Action != "":
		var e distributionEvent
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("body is not an event: %w", err)
		}
		events = []distributionEvent{e}
	default:
		return nil, errors.New(`body has no "events" and is not an event`)
	}
	for i, e := range events {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
	}
	return events, nil
}

// validate refuses events whose fields could not name a real manifest.
func (e distributionEvent) validate() error {
	if e.Action == "" {
		return errors.New("no action")
	}
	if e.Action != "push" {
		return nil
	}
	t := e.Target
	if t.Repository != "" && (len(t.Repository) > 255 || !repositoryRE.MatchString(t.Repository)) {
		return fmt.Errorf("repository %q is not a valid name", truncate(t.Repository))
	}
	if t.Digest != "" && !digestRE.MatchString(t.Digest) {
		return fmt.Errorf("digest %q is not a digest", truncate(t.Digest))
	}
	if t.Tag != "" && !tagRE.MatchString(t.Tag) {
		return fmt.Errorf("tag %q is not a valid tag", truncate(t.Tag))
	}
	return nil
}

// ignore says why an event makes no job, or "" when it does.
func (e distributionEvent) ignore() string {
	switch {
	case e.Action != "push":
		return e.Action + " event"
	case !manifestMediaTypes[e.Target.MediaType]:
		return "not a manifest push (" + e.Target.MediaType + ")"
	case e.Target.Repository == "" || e.Target.Digest == "":
		return "push without repository or digest"
	case fallbackTag.MatchString(e.Target.Tag):
		return "referrers fallback index tag"
	}
	return ""
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
