// Package feed is the description stream: every description regscribe
// writes into a registry (by a model or by a person), every description
// found already there by reprocess, every manifest a worker read and found
// no photo in (a refusal, with the reason), and every manifest deleted, as one
// JetStream stream that search indexes follow with their own durable
// consumers.
//
// Data flows one way: workers, reprocess and the notifier publish; indexes
// consume. The stream keeps the newest event per manifest and describer
// (MaxMsgsPerSubject 1 on subjects regscribe.descriptions.<manifest>.<who>),
// so it stays about as large as the set of described manifests, and an
// index can always be rebuilt by reading it from the start: it then shows
// what an index that followed every event shows.
//
// A deletion is a tombstone on regscribe.descriptions.<manifest>.deleted,
// kept. Once it is stored, the events it supersedes are purged, unless
// another manifest's events may rely on them, so that a rebuilt index
// would differ without them: an annotation-mode write-back that replaced
// the deleted manifest and listed only the photos it changed carries the
// others over from the deleted manifest's events (an album's children not
// pushed again), and the deleted manifest's events that replaced an
// older, still described, manifest supersede its descriptions. Those
// events stay; the tombstone removes them from every index all the same.
//
// A refusal is kept on regscribe.descriptions.<manifest>.refused, where
// `regscribe show` finds it by digest, until a description of the manifest
// (or of one that replaces it) is stored: that purges it, as the index
// forgets it.
//
// An announcement (queued: the notifier stored the push's job), a failure
// (failed: a worker gave the job up, with the reason) and a skip (skipped:
// the job found nothing to describe) are kept one each per manifest, on
// <manifest>.queued, .failed and .skipped, so the gallery shows a photo
// from its push on, before it is described. They are not purged: an index
// applies a later description, refusal or skip of the manifest as
// superseding them, and ignores an announcement or failure of a manifest
// it holds described.
package feed
