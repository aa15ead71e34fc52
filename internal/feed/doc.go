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
// so it stays about as large as the set of described photos and an index
// can always be rebuilt by reading it from the start. A deletion is a
// tombstone on regscribe.descriptions.<manifest>.deleted; the events it
// supersedes are purged once it is stored. A refusal is kept on
// regscribe.descriptions.<manifest>.refused, where `regscribe show` finds
// it by digest, until a description of the manifest (or of one that
// replaces it) is stored: that purges it, as the index forgets it.
package feed
