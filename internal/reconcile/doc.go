// Package reconcile keeps regscribe complete when a registry's
// notifications are lost: a worker-side loop that sweeps each registry on a
// schedule and queues a job for every photo that has no description by the
// configured model, no job queued and no job given up.
//
// regscribe is edge-triggered (a notification queues a job); the sweep is
// its level trigger. Some registries never retry a notification (zot's HTTP
// sink, GitHub and Docker Hub webhooks), and Distribution keeps its retry
// queue in memory only: a notification can be lost, and only a look at the
// registry itself finds the photo it announced.
//
// A sweep plans with package reprocess (the planning `regscribe reprocess
// --missing` does: [reprocess.Plan], [reprocess.ExcludeFailed],
// [reprocess.Run]), and remembers per tag the digest it saw and what became
// of it in the key-value bucket [Bucket]: a tag still at a digest that was
// described, no photo (under the same photo.Rules), or given up costs one
// HEAD and no manifest fetch; only a new or changed tag has its manifest
// fetched and, where package photo says so, its layers' first bytes read.
// One sweep runs at a time across every worker process, under a lease
// ([LeaseName]), and a registry swept by any process is not swept again
// before its interval; after a failed sweep, before a backoff that starts
// at [Options.FirstRetry] and doubles up to the interval. The request rate is bounded by the client the caller
// passes in (see [Limit] and [NewClient]).
//
// The package reads registries and queues jobs; it never writes to a
// registry and never decides on its own what a photo is or who described
// it (package photo does, through reprocess).
package reconcile
