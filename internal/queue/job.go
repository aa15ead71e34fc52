package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// JobVersion is the schema version of [Job] written by this build.
const JobVersion = 1

// Job asks a worker to describe the photo(s) of one manifest.
//
// Schema, version 1 (JSON):
//
//	{
//	  "v": 1,                          // schema version
//	  "registry": "127.0.0.1:5000",    // a configured registry (host[:port]); never taken from an event body
//	  "repository": "photos/pineapple",
//	  "digest": "sha256:…",            // manifest digest
//	  "tag": "latest",                 // tag named by the push, if any
//	  "mediaType": "application/vnd.oci.image.manifest.v1+json",
//	  "source": "distribution",        // the event format it came from
//	  "received": "2026-11-27T20:00:00Z",
//	  "force": false,                  // describe again even if described
//	  "batch": "…",                    // reprocess run it belongs to; results go to regscribe.results.<batch>
//	  "event": "id:6f1b2c3d-89cdc86c", // the announcement the job came from (notifier jobs); see Event
//	  "replace": false,                // replace another model's description (reprocess --missing)
//	  "deleted": false,                // the registry announced the manifest's deletion
//	  "correction": {…}                // a person's description to write instead of asking the model
//	}
//
// Readers ignore fields they do not know, so "event" and "replace" needed no
// new version: a job written without them reads as one with their zero values.
type Job struct {
	Version    int       `json:"v"`
	Registry   string    `json:"registry"`
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	Tag        string    `json:"tag,omitempty"`
	MediaType  string    `json:"mediaType,omitempty"`
	Source     string    `json:"source"`
	Received   time.Time `json:"received"`
	Force      bool      `json:"force,omitempty"`
	Batch      string    `json:"batch,omitempty"`
	// Event identifies the announcement the job was made from, as its
	// format identifies one: Distribution's and ACR's event id, a
	// CloudEvent's id, GitHub's X-GitHub-Delivery, Harbor's occur_at, Docker
	// Hub's pushed_at; a registry that delivers the same announcement again
	// sends the same Event. Where a format identifies no announcement
	// (Quay), the notifier draws a unique one, so such jobs are never
	// dropped as duplicates. Empty for jobs not made from an announcement
	// (reprocess).
	Event string `json:"event,omitempty"`

	// Replace describes the photo even when another model described it
	// (not a person), from the description memory when it has one, so the
	// jobs of every tag of one photo write the same description with at
	// most one model call (reprocess --missing).
	Replace bool `json:"replace,omitempty"`

	// Deleted says the registry announced that the manifest was deleted
	// (or, with a Tag and no Digest, the tag): the worker checks that it
	// is gone and removes it from search (a tombstone, or an untagged
	// event, on the description stream); nothing is described.
	Deleted bool `json:"deleted,omitempty"`

	// Correction is a description written by a person (the gallery's
	// "correct"), written back like a model's with io.regscribe.model
	// naming the person; no model is asked. Only a forced job replaces it.
	Correction *Correction `json:"correction,omitempty"`
}

// Correction is a person's description of one photo.
type Correction struct {
	// Layer is the image layer's digest (empty: the manifest's only photo).
	Layer       string   `json:"layer,omitempty"`
	Description string   `json:"description"`
	Alt         string   `json:"alt,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
	Text        string   `json:"text,omitempty"`
	// By names the person ("" when unknown); see photo.PersonModel.
	By string `json:"by,omitempty"`
	// At is when the person saved it; two corrections of one photo are
	// two jobs.
	At time.Time `json:"at"`
}

// Ref returns registry/repository@digest (with :tag before the digest when known).
func (j Job) Ref() string {
	ref := j.Registry + "/" + j.Repository
	if j.Tag != "" {
		ref += ":" + j.Tag
	}
	return ref + "@" + j.Digest
}

// ID is the JetStream message id of the job (Nats-Msg-Id). Within the
// stream's duplicate window, the same announcement delivered twice (a
// registry retrying) is queued once, while two announcements are two jobs
// even when they name the same tag or digest: a second push of :latest, a
// push of a manifest back onto the tag regscribe moved. Jobs without an
// Event (reprocess) are identified by their photo, so a run queues each once.
// A forced job is a different job from an unforced one for the same photo.
func (j Job) ID() string {
	parts := []string{j.Registry, j.Repository, j.Digest, j.Tag}
	if j.Force {
		parts = append(parts, "force")
	}
	if j.Replace {
		parts = append(parts, "replace")
	}
	if j.Event != "" {
		parts = append(parts, "event", j.Event)
	}
	if j.Deleted {
		parts = append(parts, "deleted")
	}
	if c := j.Correction; c != nil {
		parts = append(parts, "correction", c.Layer, c.At.UTC().Format(time.RFC3339Nano))
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// Validate checks the fields every job needs.
func (j Job) Validate() error {
	switch {
	case j.Version != JobVersion:
		return fmt.Errorf("job schema version %d, want %d", j.Version, JobVersion)
	case j.Registry == "":
		return errors.New("job has no registry")
	case j.Repository == "":
		return errors.New("job has no repository")
	case j.Digest == "" && j.Tag == "":
		return errors.New("job has neither digest nor tag")
	}
	return nil
}

// Marshal encodes the job.
func (j Job) Marshal() ([]byte, error) { return json.Marshal(j) }

// ParseJob decodes and validates a job message.
func ParseJob(data []byte) (Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return Job{}, fmt.Errorf("decode job: %w", err)
	}
	if err := j.Validate(); err != nil {
		return Job{}, err
	}
	return j, nil
}
