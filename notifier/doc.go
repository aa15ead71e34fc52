// Package notifier receives registries' push notifications over HTTP and
// turns each manifest push into a job on the queue, and each manifest or
// tag deletion into a job that removes the manifest, or the tag, from
// search ([queue.Job.Deleted]).
//
// It reads the notification formats of CNCF Distribution and ACR, Harbor
// (Default and CloudEvents payloads), zot (CloudEvents), GitHub Packages
// (registry_package), Quay (repo_push) and Docker Hub: one decoder per
// format, each a pure function from a request body to events, and one path
// from events to jobs, so every format makes the same [queue.Job]. Quay and
// Docker Hub name tags but no digest; their jobs carry the tag and the
// worker resolves it.
//
// Each [Source] has its own URL (POST /v1/events/{name}), format, registry
// and credentials (bearer token, basic auth, or a GitHub HMAC secret);
// POST /v1/events is the default source of [Options.Token] and
// [Options.Registry], which recognises the format of each request.
//
// It authenticates every request, keeps only manifest pushes and manifest
// and tag deletions (blob pushes, pulls, mounts, deletions of a
// repository, other event types, regscribe's own description artifacts and
// deletions, and referrers fallback tags are dropped). Deletions are
// announced by Distribution (by digest, and by tag) and ACR (by digest), Harbor
// (DELETE_ARTIFACT) and zot (zotregistry.image.deleted); GitHub, Quay and
// Docker Hub announce none. It names in every job the
// registry from configuration (an event body never chooses where a worker
// connects; an event naming another registry host is refused) and answers
// 2xx only once JetStream has stored the jobs, so a registry retries
// whatever was not stored. A malformed request is a 4xx with a reason and
// queues nothing.
//
// With [Options.Announce], it also puts a queued event per manifest pushed
// on the description stream (package feed) once the jobs are stored, so
// the gallery shows the photo before it is described.
//
// It never talks to a registry or a model, and never calls a URL an event
// names.
package notifier
