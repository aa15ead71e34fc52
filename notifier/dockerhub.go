package notifier

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// decodeDockerHub decodes Docker Hub's repository webhook
// (https://docs.docker.com/docker-hub/repos/manage/webhooks/):
//
//	{"callback_url": "…", "push_data": {"pushed_at": 1417566161, "pusher": "…", "tag": "latest"},
//	 "repository": {"repo_name": "team/app", "namespace": "team", "name": "app", …}}
//
// It names no digest and no registry host: the job names the tag, which the
// worker resolves, on the source's registry. callback_url is never called
// (it would let the sender pick an address regscribe connects to).
func decodeDockerHub(body []byte, m meta) ([]event, error) {
	if err := checkContentType(m.contentType, "application/json"); err != nil {
		return nil, err
	}
	var msg struct {
		PushData *struct {
			Tag string `json:"tag"`
			// PushedAt is the push's time in Unix seconds: the webhook has
			// no id, and this tells two pushes of a tag apart.
			PushedAt json.Number `json:"pushed_at"`
		} `json:"push_data"`
		Repository struct {
			RepoName  string `json:"repo_name"`
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, fmt.Errorf("body is not a Docker Hub webhook: %s", jsonError(err))
	}
	if msg.PushData == nil {
		return nil, errors.New(`Docker Hub webhook has no "push_data"`)
	}
	repo := msg.Repository.RepoName
	if repo == "" && msg.Repository.Name != "" {
		repo = msg.Repository.Name
		if msg.Repository.Namespace != "" {
			repo = msg.Repository.Namespace + "/" + repo
		}
	}
	if repo != "" && !strings.Contains(repo, "/") {
		// Official images: "nginx" is library/nginx in the registry API.
		repo = "library/" + repo
	}
	if msg.PushData.Tag == "" {
		return nil, errors.New("Docker Hub webhook names no tag (push_data.tag)")
	}
	return []event{{repository: repo, tag: msg.PushData.Tag, id: idOf(eventPushedAt, msg.PushData.PushedAt.String())}}, nil
}
