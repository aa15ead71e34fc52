// Package notifier receives registries' push notifications over HTTP and
// turns each manifest push into a job on the queue.
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
// It authenticates every request, keeps only manifest pushes (blob pushes,
// pulls, mounts, deletes, other event types, regscribe's own description
// artifacts and referrers fallback tags are dropped), names in every job the
// registry from configuration (an event body never chooses where a worker
// connects; an event naming another registry host is refused) and answers
// 2xx only once JetStream has stored the jobs, so a registry retries
// whatever was not stored. A malformed request is a 4xx with a reason and
// queues nothing.
//
// It never talks to a registry or a model, and never calls a URL an event
// names.
package notifier
