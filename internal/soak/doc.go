// Package soak holds regscribe's seeded fault soak (soak_test.go): a few
// hundred photos pushed through the real registries, the real notifier,
// NATS JetStream and several worker pools while faults fire at random, and
// an audit, from outside, of what the README promises: every job ends
// exactly once, nothing is left in the queue, every photo has exactly one
// description and each tag ends on its last push, described; every
// description written is on the description stream; the failed jobs are
// the faults injected on purpose, and the dead-letter stream, past its
// retention, keeps the newest of them; text files pushed as generic layers
// end refused; the search index has one entry per photo under the
// registry's one name; and an index rebuilt from the stream equals the one
// that followed it.
//
// Three sub-soaks: Distribution on disk in referrer mode, a registry with
// the referrers API in auto mode, and Distribution on disk in annotation
// mode with the re-push race provoked (tag links held until a worker
// looks) while every processor is kept busy for part of the run. Each
// pushes some repositories as localhost:PORT and reprocesses them under
// that name, and pushes some photos again to their tag: the same manifest
// or another photo, after or while it is described.
//
// REGSCRIBE_SOAK_SEED sets the seed (it is logged at the start of each run);
// the seed fixes the workload and the fault plan, not the interleaving.
// `go test -short` runs a smaller soak. The package has no code besides its
// test.
package soak
