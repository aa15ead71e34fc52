// Package registry is regscribe's side of the OCI distribution API, built on
// oras-go: which registries may be contacted, fetching manifests and image
// blobs with size caps, and writing descriptions back.
//
// The host a request goes to always comes from configuration ([Client] is
// built from [Endpoint]s, REGSCRIBE_REGISTRIES); a job names a configured
// registry or is refused. Which registry a name means is decided here only
// ([Names]): the loopback names (localhost, 127.0.0.1, ::1) of one port and
// a registry's configured aliases are that registry, known everywhere by
// its configured name; requests go to the name as configured, and
// credentials are found under any loopback spelling. Registry failures are
// classified with package fault: 5xx, 429, network and unknown errors are
// retryable (within the job's attempts), auth failures, size and digest
// violations permanent, a manifest that is gone a skip.
//
// An annotation-mode write-back that finds its tag on another manifest
// decides by the tag's record (package queue's regscribe-tags: the pushes
// the notifier recorded as announced, and regscribe's own tag moves)
// whether to wait for the registry to link the push, restore the tag, or
// leave it to a later push; see [Client.WriteAnnotation].
package registry
