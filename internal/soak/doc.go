// Package soak holds regscribe's seeded fault soak (soak_test.go): a few
// hundred photos pushed through the real registries, the real notifier,
// NATS JetStream and several worker pools while faults fire at random, and
// an audit, from outside, of what the README promises: every job ends
// exactly once, nothing is left in the queue, every photo has exactly one
// description, every description written is on the description stream,
// and every dead letter is a fault injected on purpose.
//
// REGSCRIBE_SOAK_SEED sets the seed (it is logged at the start of each run);
// the seed fixes the workload and the fault plan, not the interleaving.
// `go test -short` runs a smaller soak. The package has no code besides its
// test.
package soak
