// Package registry is regscribe's side of the OCI distribution API, built on
// oras-go: which registries may be contacted, fetching manifests and image
// blobs with size caps, and writing descriptions back.
//
// The host a request goes to always comes from configuration ([Client] is
// built from REGSCRIBE_REGISTRIES); a job names a configured registry or is
// refused. Registry failures are classified with package fault: 5xx, 429 and
// network errors are retryable, auth failures, size and digest violations
// permanent, a manifest that is gone a skip.
package registry
