// Package queue owns regscribe's JetStream layout: the job message and its
// schema, the stream and subject names, the durable consumer the workers
// share, and publishing with acknowledgement.
//
// It must not know about registries, models or HTTP: the notifier and the
// worker build and read [Job] values, and this package moves them.
package queue
