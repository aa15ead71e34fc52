package notifier

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MediaTypeDistributionEvents is the content type of Distribution's envelopes.
const MediaTypeDistributionEvents = "application/vnd.docker.distribution.events.v2+json"

// distributionEvent is one event of a Distribution envelope (the fields
// regscribe reads), as github.com/distribution/distribution/v3/notifications
// writes it. ACR sends the same object without an envelope.
type distributionEvent struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	// Timestamp is when the registry made the event: for a push, when it
	// stored the manifest, before it linked the tag.
	Timestamp time.Time `json:"timestamp"`
	Target    struct {
		MediaType string `json:"mediaType"`
		// ArtifactType is part of the OCI descriptor the target embeds;
		// Distribution v3.1 leaves it empty, other implementations may not.
		ArtifactType string `json:"artifactType"`
		Digest       string `json:"digest"`
		Repository   string `json:"repository"`
		Tag          string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host      string `json:"host"`
		UserAgent string `json:"useragent"`
	} `json:"request"`
}

// decodeDistribution decodes an envelope ({"events": [...]}) or, as ACR
// sends it, a single event object.
//
// It leaves event.host empty: Distribution's request.host (and target.url)
// is the Host header of the client that pushed, not configuration of the
// registry, so it says nothing about which registry sent the event and is
// neither checked nor used. The job names the source's registry regardless.
func decodeDistribution(body []byte, m meta) ([]event, error) {
	raw, err := decodeDistributionEvents(body, m)
	if err != nil {
		return nil, err
	}
	events := make([]event, len(raw))
	for i, d := range raw {
		events[i] = d.event()
	}
	return events, nil
}

// decodeACR decodes ACR's webhook: Distribution's event fields, with
// request.host the registry's login server (e.g. myregistry.azurecr.io),
// which must be the source's registry.
func decodeACR(body []byte, m meta) ([]event, error) {
	raw, err := decodeDistributionEvents(body, m)
	if err != nil {
		return nil, err
	}
	events := make([]event, len(raw))
	for i, d := range raw {
		events[i] = d.event()
		if events[i].skip == "" {
			events[i].host = hostOf(d.Request.Host)
		}
	}
	return events, nil
}

func decodeDistributionEvents(body []byte, m meta) ([]distributionEvent, error) {
	if err := checkContentType(m.contentType, MediaTypeDistributionEvents, "application/json"); err != nil {
		return nil, err
	}
	var env struct {
		Events *[]distributionEvent `json:"events"`
		Action string               `json:"action"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("body is not a notification envelope: %s", jsonError(err))
	}
	var events []distributionEvent
	switch {
	case env.Events != nil:
		events = *env.Events
	case env.Action != "":
		var e distributionEvent
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("body is not an event: %s", jsonError(err))
		}
		events = []distributionEvent{e}
	default:
		return nil, errors.New(`body has no "events" and is not an event`)
	}
	for i, e := range events {
		if e.Action == "" {
			return nil, fmt.Errorf("event %d: no action", i)
		}
	}
	return events, nil
}

func (d distributionEvent) event() event {
	switch d.Action {
	case "push":
	case "delete":
		return d.deletion()
	default:
		// pull (HEAD checks are pulls too), mount; ACR's chart_push,
		// chart_delete, quarantine.
		return event{skip: d.Action + " event"}
	}
	return event{
		repository:   d.Target.Repository,
		digest:       d.Target.Digest,
		tag:          d.Target.Tag,
		mediaType:    d.Target.MediaType,
		artifactType: d.Target.ArtifactType,
		// Distribution gives every event its own id, kept when it delivers
		// the event again; ACR does the same.
		id: idOf(eventID, d.ID),
		at: d.Timestamp,
		// Blob pushes are pushes too (media type application/octet-stream).
		manifestOnly: true,
	}
}

// deletion reads a delete event. Distribution (v3, notifications/bridge.go)
// sends, for DELETE of a manifest by digest, one event naming the digest
// (no media type, no tag) and then one per tag that pointed at it naming
// only the tag; for DELETE of a tag (the manifest stays), one naming only
// the tag; for a repository's deletion, one naming only the repository.
// The first kind says a manifest is gone: it makes a deletion job. A
// tag-only event says the tag is gone: it makes a deletion job naming the
// tag and no digest, whose worker takes the tag off search once the
// registry no longer has it. ACR's delete names the digest and the
// manifest's media type.
//
// A blob deleted through the API (rare: garbage collection announces
// nothing) is announced exactly like a manifest: its job finds no such
// manifest and removes nothing from search.
//
// regscribe deletes only manifests that are no photos (description
// referrers it prunes; old referrers fallback indexes, which oras-go
// deletes by digest at every referrer write on a registry without the
// referrers API): a delete event whose request came from regscribe's own
// client (User-Agent "regscribe" or "regscribe/…") is ignored.
func (d distributionEvent) deletion() event {
	ua := d.Request.UserAgent
	if ua == "regscribe" || strings.HasPrefix(ua, "regscribe/") {
		return event{skip: "regscribe's own deletion (a description referrer or a referrers fallback index)"}
	}
	if d.Target.Digest == "" && d.Target.Tag == "" {
		return event{skip: "deletion of a repository (it names no manifest)"}
	}
	return event{
		repository: d.Target.Repository,
		digest:     d.Target.Digest,
		tag:        d.Target.Tag,
		mediaType:  d.Target.MediaType,
		id:         idOf(eventID, d.ID),
		at:         d.Timestamp,
		deleted:    true,
	}
}
