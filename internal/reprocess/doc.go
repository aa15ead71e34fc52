// Package reprocess describes photos that are already in a registry: the ones
// pushed before regscribe was running, or described by another model.
//
// [Plan] lists a repository's tags (or every repository's, through the
// catalog API), resolves them to manifests concurrently, de-duplicates them
// per (repository, digest) and decides for each manifest whether it is a
// photo (reading the first bytes of layers whose media types say nothing:
// photo.Find) and whether the configured model (or a person) described it
// already, with package photo, as the worker does. [Run] puts
// one job per photo to describe on the same JetStream stream the notifier
// feeds, under a batch id of its own, and waits for the result the workers
// publish when each job ends ([queue.Result] on [queue.ResultSubject]).
// [Summarize] counts what happened, exactly, from the items.
//
// With PlanOptions.Backfill (`regscribe reprocess`, never the reconcile
// sweeps), the plan also reads the descriptions each photo already has
// (package photo decides: annotations and regscribe referrers, by any model
// or person) and Run puts them on the description stream (package feed) as
// found events, so search indexes photos described before it existed,
// without a model call.
//
// A manifest of files whose first bytes hold no photo is refused visibly:
// Run puts its refusal on the description stream (Item.Refused), as a
// worker's job would, so a sweep that finds one whose notification was
// lost makes it seen.
//
// The package reads registries and publishes jobs, found descriptions and
// refusals; it never writes to a registry and never describes a photo
// itself: that stays the worker's job, so a reprocessed photo is described
// exactly as a pushed one is.
package reprocess
