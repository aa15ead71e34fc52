// Package worker turns jobs into descriptions: it takes jobs from the shared
// JetStream consumer, fetches each manifest and its image layers, prepares
// the images, asks the vision model (or the description memory) and writes
// the description back into the registry. Whether a manifest is a photo and
// whether it is described already (and by whom) is package photo's decision,
// the same one `regscribe reprocess` makes.
//
// The worker owns the interfaces it needs ([Describer], [Memory]) and makes
// the one decision of what happens to a job message (Ack, Nak with backoff,
// Term, or wait for the model) in [Worker.settle], from errors classified
// with package fault. It never reads configuration or the environment.
package worker
