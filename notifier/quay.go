package notifier

import (
	"encoding/json"
	"errors"
	"fmt"
)

// decodeQuay decodes Quay's repo_push notification
// (https://docs.quay.io/guides/notifications.html):
//
//	{"name": "app", "repository": "team/app", "namespace": "team",
//	 "docker_url": "quay.io/team/app", "updated_tags": ["v1"]}
//
// It names no digest: each updated tag makes a job by tag, which the worker
// resolves. docker_url names the registry. Nothing in it tells one push of a
// tag from the next (no id, no time), so its jobs get unique Events and are
// never dropped as duplicates: a registry retry queues a second job for the
// tag, which the worker finds described and skips.
func decodeQuay(body []byte, m meta) ([]event, error) {
	if err := checkContentType(m.contentType, "application/json"); err != nil {
		return nil, err
	}
	var msg struct {
		Name        string   `json:"name"`
		Repository  string   `json:"repository"`
		Namespace   string   `json:"namespace"`
		DockerURL   string   `json:"docker_url"`
		UpdatedTags []string `json:"updated_tags"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, fmt.Errorf("body is not a Quay notification: %s", jsonError(err))
	}
	repo := msg.Repository
	if repo == "" && msg.Namespace != "" {
		repo = msg.Namespace + "/" + msg.Name
	}
	if repo == "" {
		return nil, errors.New(`Quay notification names no "repository"`)
	}
	if len(msg.UpdatedTags) == 0 {
		return []event{{skip: "repo_push without updated tags"}}, nil
	}
	host := hostOf(msg.DockerURL)
	events := make([]event, 0, len(msg.UpdatedTags))
	for _, tag := range msg.UpdatedTags {
		events = append(events, event{repository: repo, tag: tag, host: host})
	}
	return events, nil
}
