// Package web serves regscribe's web address: the gallery (pages to browse,
// search, correct and describe photos again, and to watch and retry jobs),
// the search API (GET /v1/search) and the thumbnails.
//
// It reads the search index only through [Catalog] (the grid of photos
// and their states comes from it, never from the job queue), the job queue
// through package queue on JetStream, the model's outages through package
// outage, and registries only through the registry client (thumbnails,
// reprocess plans). It never writes to a registry: a
// correction or a new description is a job for the workers, like any other.
//
// Security is decided here, once, for every request: credentials when a
// token is configured (and a loopback Host when none is), a CSRF token and a
// same-origin check on every POST, a Content-Security-Policy without inline
// script, and thumbnails that are always re-encoded (package thumb).
package web
