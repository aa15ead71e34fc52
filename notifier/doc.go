// Package notifier receives registries' push notifications over HTTP and
// turns each manifest push into a job on the queue.
//
// It authenticates every request, keeps only manifest pushes (blob pushes,
// pulls, mounts and deletes are dropped), maps the event to a registry from
// configuration (an event body never chooses where a worker connects) and
// answers 2xx only once JetStream has stored the jobs, so a registry retries
// whatever was not stored. It never talks to a registry or a model.
package notifier
