// Package worker turns jobs into descriptions: it takes jobs from the shared
// JetStream consumer, fetches each manifest and its image layers, prepares
// the images, asks the vision model (or the description memory) and writes
// the description back into the registry. Whether a manifest is a photo and
// whether it is described already (and by whom) is package photo's decision,
// the same one `regscribe reprocess` makes. A correction job writes a
// person's description the same way, without the model; a deletion job
// checks that the manifest is gone. Each job that writes (or finds its
// manifest gone) publishes description events (package feed) with its
// result, for search indexes to follow; a job given up publishes that its
// manifest failed, and why, and one that finds nothing to describe that
// it was skipped, so the gallery shows every push as it ends. The model's
// outages are reported to [Options.Outages].
//
// The worker owns the interfaces it needs ([Describer], [Memory], [Feed]) and makes
// the one decision of what happens to a job message (Ack, Nak with backoff,
// Term, or wait for the model) in [Worker.settle], from errors classified
// with package fault. It never reads configuration or the environment.
package worker
