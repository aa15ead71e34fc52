package notifier

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
)

// Harbor event types that announce a push or an artifact's deletion, in
// the Default and the CloudEvents payload format of a webhook policy.
// Harbor's payload of a deletion is the push's (src/controller/event/
// handler/webhook/artifact/artifact.go builds both): the artifact's digest
// and its first tag, or the digest again when it had none. Deleting an
// artifact deletes the manifest with every tag; deleting one tag in Harbor
// announces nothing.
const (
	harborPushDefault       = "PUSH_ARTIFACT"
	harborPushCloudEvents   = "harbor.artifact.pushed"
	harborDeleteDefault     = "DELETE_ARTIFACT"
	harborDeleteCloudEvents = "harbor.artifact.deleted"
)

// harborEventData is Harbor's event_data (the CloudEvent's data).
type harborEventData struct {
	Resources []struct {
		Digest      string `json:"digest"`
		Tag         string `json:"tag"`
		ResourceURL string `json:"resource_url"`
	} `json:"resources"`
	Repository struct {
		Name         string `json:"name"`
		Namespace    string `json:"namespace"`
		RepoFullName string `json:"repo_full_name"`
	} `json:"repository"`
}

// decodeHarbor decodes a Harbor webhook, payload format Default
// ({"type":"PUSH_ARTIFACT","event_data":{...}}) or CloudEvents
// (application/cloudevents+json, type harbor.artifact.pushed, data = event_data).
//
// A resource's resource_url names the registry (Harbor's external URL) and
// is checked against the source. A push by digest (robot accounts, proxy
// caches) carries the digest in "tag": it makes a job by digest.
// DELETE_ARTIFACT (harbor.artifact.deleted) makes a deletion job.
func decodeHarbor(body []byte, m meta) ([]event, error) {
	if err := checkContentType(m.contentType, "application/json", mediaTypeCloudEvents); err != nil {
		return nil, err
	}
	var typ, id string
	var data harborEventData
	if isCloudEvent(body, m) {
		t, ceID, raw, err := decodeCloudEvent(body)
		if err != nil {
			return nil, err
		}
		typ, id = t, idOf(eventID, ceID)
		if raw != nil {
			if err := json.Unmarshal(raw, &data); err != nil {
				return nil, fmt.Errorf("CloudEvent data is not Harbor's event data: %s", jsonError(err))
			}
		}
	} else {
		var msg struct {
			Type string `json:"type"`
			// OccurAt is the event's time in Unix seconds: the Default
			// payload has no id, and Harbor's retries resend the same body.
			OccurAt   json.Number      `json:"occur_at"`
			EventData *harborEventData `json:"event_data"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			return nil, fmt.Errorf("body is not a Harbor webhook: %s", jsonError(err))
		}
		if msg.Type == "" {
			return nil, errors.New(`Harbor webhook has no "type"`)
		}
		typ, id = msg.Type, idOf(eventOccurAt, msg.OccurAt.String())
		if msg.EventData != nil {
			data = *msg.EventData
		}
	}
	deleted := typ == harborDeleteDefault || typ == harborDeleteCloudEvents
	if typ != harborPushDefault && typ != harborPushCloudEvents && !deleted {
		// PULL_ARTIFACT, SCANNING_COMPLETED, … (and their harbor.*
		// CloudEvents types).
		return []event{{skip: typ + " event"}}, nil
	}
	if len(data.Resources) == 0 {
		return nil, fmt.Errorf("%s event names no artifact (event_data.resources is empty)", typ)
	}
	repo := data.Repository.RepoFullName
	if repo == "" && data.Repository.Namespace != "" {
		repo = data.Repository.Namespace + "/" + data.Repository.Name
	}
	events := make([]event, 0, len(data.Resources))
	for _, r := range data.Resources {
		tag, digest := tagOrDigest(r.Tag)
		if r.Digest != "" {
			digest = r.Digest
		}
		events = append(events, event{
			repository: repo,
			digest:     digest,
			tag:        tag,
			host:       hostOf(r.ResourceURL),
			id:         id,
			deleted:    deleted,
		})
	}
	return events, nil
}

// isCloudEvent tells a structured-mode CloudEvent: by content type, or by
// its specversion attribute.
func isCloudEvent(body []byte, m meta) bool {
	if mt, _, _ := mime.ParseMediaType(m.contentType); mt == mediaTypeCloudEvents {
		return true
	}
	var probe struct {
		SpecVersion json.RawMessage `json:"specversion"`
	}
	return json.Unmarshal(body, &probe) == nil && probe.SpecVersion != nil
}
