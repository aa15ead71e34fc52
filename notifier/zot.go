package notifier

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/regscribe/regscribe/internal/queue"
)

// zotImageUpdated is the CloudEvent type zot sends when a tag (or a manifest
// pushed by digest) changes: one event per changed tag. zot's other types
// are zotregistry.image.deleted, .image.lint_failed, .image.scanned and
// zotregistry.repository.created; zot has no setting that renames them.
//
// Neither of zot's sinks ever sends an event again (seen with zot v2.1.20):
// the http sink makes one attempt and only logs a failure, so a push while
// the notifier is unreachable is never announced; the nats sink publishes
// with core NATS (no acknowledgement), and zot refuses to start while its
// NATS server is unreachable, so NATS must be up before zot. The workers'
// reconcile sweeps (package reconcile) find the photos whose event was lost.
const zotImageUpdated = "zotregistry.image.updated"

// zotImageDeleted is the CloudEvent type zot sends when a manifest is
// deleted, by digest or by tag (the reference deleted, the manifest's
// digest and media type; no manifest). A tag's deletion leaves the manifest
// in place only when another tag still points at it: the job's worker
// checks whether it is gone.
const zotImageDeleted = "zotregistry.image.deleted"

// zotImage is the data of zot's image events.
type zotImage struct {
	Name      string `json:"name"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Manifest is the manifest itself, as a string.
	Manifest string `json:"manifest"`
}

// decodeZot decodes a CloudEvent of zot's events extension: in HTTP binary
// mode (Ce-Type header, body = data, as zot's http sink sends it) or in
// structured mode (the whole event as JSON, as its nats sink publishes it).
//
// image.updated events make jobs that describe, image.deleted events jobs
// that remove the manifest from search; image.lint_failed, image.scanned
// and repository.created are ignored. zot's events name no registry host.
func decodeZot(body []byte, m meta) ([]event, error) {
	var typ, id string
	var data []byte
	if m.ceType != "" {
		if err := checkContentType(m.contentType, "application/json"); err != nil {
			return nil, err
		}
		typ, id, data = m.ceType, m.ceID, body
	} else {
		if err := checkContentType(m.contentType, mediaTypeCloudEvents, "application/json"); err != nil {
			return nil, err
		}
		var err error
		if typ, id, data, err = decodeCloudEvent(body); err != nil {
			return nil, err
		}
	}
	if typ != zotImageUpdated && typ != zotImageDeleted {
		return []event{{skip: typ + " event"}}, nil
	}
	if data == nil {
		return nil, fmt.Errorf("%s event has no data", typ)
	}
	var img zotImage
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, fmt.Errorf("%s data is not an image: %s", typ, jsonError(err))
	}
	tag, digest := tagOrDigest(img.Reference)
	if img.Digest != "" {
		digest = img.Digest
	}
	if typ == zotImageDeleted {
		return []event{{repository: img.Name, digest: digest, tag: tag, mediaType: img.MediaType, id: idOf(eventID, id), deleted: true}}, nil
	}
	return []event{{
		repository:   img.Name,
		digest:       digest,
		tag:          tag,
		mediaType:    img.MediaType,
		artifactType: zotArtifactType(img.Manifest),
		id:           idOf(eventID, id),
	}}, nil
}

// zotArtifactType returns the artifact type of a manifest (its artifactType,
// else its config's media type), or "" when the manifest does not say.
func zotArtifactType(manifest string) string {
	if manifest == "" {
		return ""
	}
	var m struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if json.Unmarshal([]byte(manifest), &m) != nil {
		return ""
	}
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	return m.Config.MediaType
}

// JobsFromZotEvent turns one CloudEvent of zot's events extension, in
// structured JSON as zot's nats sink publishes it on its subject, into jobs
// for src (its Registry names the registry; its Auth is not used: the NATS
// account is the credential). It applies the notifier's filters: events
// other than image.updated and image.deleted, regscribe's own artifacts and
// referrers fallback tags make no jobs and no error; image.deleted makes a
// job with Deleted set. An error means the event is malformed.
func JobsFromZotEvent(data []byte, src Source, now time.Time) ([]queue.Job, error) {
	src = src.normalize()
	if err := src.validateHosts(); err != nil {
		return nil, fmt.Errorf("zot event: %w", err)
	}
	events, err := decodeZot(data, meta{})
	if err != nil {
		return nil, fmt.Errorf("zot event: %w", err)
	}
	out, _, err := makeJobs(events, &src, FormatZot, now.UTC())
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("zot event: %s", re.reason)
		}
		return nil, err
	}
	return out, nil
}
