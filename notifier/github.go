package notifier

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// githubPackage is registry_package (or package) of GitHub's webhook
// (https://docs.github.com/en/webhooks/webhook-events-and-payloads#registry_package).
type githubPackage struct {
	Name           string `json:"name"`
	Namespace      string `json:"namespace"`
	PackageType    string `json:"package_type"`
	PackageVersion *struct {
		// Version is the manifest digest for container packages.
		Version           string `json:"version"`
		PackageURL        string `json:"package_url"`
		ContainerMetadata struct {
			Tag struct {
				Name   string `json:"name"`
				Digest string `json:"digest"`
			} `json:"tag"`
		} `json:"container_metadata"`
	} `json:"package_version"`
}

// decodeGitHub decodes GitHub's registry_package webhook (and the
// repository-level package webhook, which has the same fields under
// "package"). Only action "published" of a container package makes a job;
// other events (X-GitHub-Event: ping, …) and other package types are
// ignored. package_url names the registry (ghcr.io).
//
// The signature (X-Hub-Signature-256) is checked before decoding, over the
// raw body, by the source's Auth.
func decodeGitHub(body []byte, m meta) ([]event, error) {
	if err := checkContentType(m.contentType, "application/json"); err != nil {
		return nil, fmt.Errorf("%w (set the webhook's content type to application/json)", err)
	}
	if m.githubEvent != "" && m.githubEvent != "registry_package" && m.githubEvent != "package" {
		return []event{{skip: "GitHub " + truncate(m.githubEvent) + " event"}}, nil
	}
	var msg struct {
		Action          string         `json:"action"`
		RegistryPackage *githubPackage `json:"registry_package"`
		Package         *githubPackage `json:"package"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, fmt.Errorf("body is not a GitHub webhook: %s", jsonError(err))
	}
	pkg := msg.RegistryPackage
	if pkg == nil {
		pkg = msg.Package
	}
	switch {
	case pkg == nil:
		return nil, errors.New(`body has no "registry_package"`)
	case msg.Action != "published":
		return []event{{skip: "registry_package " + truncate(msg.Action) + " event"}}, nil
	case !strings.EqualFold(pkg.PackageType, "container"):
		return []event{{skip: "not a container package (" + truncate(pkg.PackageType) + ")"}}, nil
	case pkg.PackageVersion == nil:
		return nil, errors.New(`registry_package has no "package_version"`)
	}
	v := pkg.PackageVersion
	digest := v.ContainerMetadata.Tag.Digest
	if digest == "" && digestRE.MatchString(v.Version) {
		digest = v.Version
	}
	repo := pkg.Name
	if pkg.Namespace != "" {
		repo = pkg.Namespace + "/" + pkg.Name
	}
	return []event{{
		// GitHub keeps the owner's and the package's case; references on
		// ghcr.io are lower-case.
		repository: strings.ToLower(repo),
		digest:     digest,
		tag:        v.ContainerMetadata.Tag.Name,
		host:       hostOf(v.PackageURL),
		// GitHub names each delivery; a redelivery keeps the name.
		id: idOf(eventDelivery, m.githubDelivery),
	}}, nil
}
