// Package photo decides what a photo is and whether it is described already,
// and by whom, for every part of regscribe that has to know: the worker
// before it describes, `regscribe reprocess` when it plans, and anything
// later that reads a registry (a reconcile loop, a search index).
//
// What a photo is: an OCI image manifest with at least one layer of an image
// media type ([MediaTypes]), that is not a regscribe description artifact;
// an index is a photo album when one of its children is a photo ([Children],
// [Album]). A manifest whose layers say nothing of their content (oras's
// default media type, application/octet-stream, none; [GenericMediaTypes];
// or an image/* type regscribe does not prepare, such as image/jpg) and
// that is no container image is a photo when their first bytes are one:
// [ToSniff] names the layers to read, [Sniffed] decides from what
// imageprep.Sniff said of them, and says why a manifest with none is not an
// image. [Find] is the whole decision, for the worker and reprocess (and so
// the reconcile sweeps) alike, with the caller's read of the first bytes;
// [Rules] is its version.
//
// Who described it: the manifest's io.regscribe.* annotations and its
// regscribe description referrers each name a describer in
// io.regscribe.model. regscribe writes "provider/model" there; a description
// a person wrote or corrected names "person" or "person:NAME"
// ([PersonModel]), and a description with no io.regscribe.model at all was
// not written by regscribe, so it counts as a person's too. [Described]
// turns those facts, the configured model and the job's [Policy] into a
// [Verdict]: who described the photo and what to do (skip or describe).
// [Descriptions] reads what each describer said (the descriptions
// themselves, per photo layer, as [feed.Photo] values), for the search
// index and reprocess's backfill; [RecordNeeded] says which referrers'
// records a caller must fetch for it. Both read back the layers [ReadBack]
// names: a layer that carries a description of its own is a photo whatever
// its media type, so everything regscribe wrote is read back.
//
// The package holds pure functions only: it never reads or writes a
// registry (the caller reads the layers' first bytes, or hands [Find] the
// read), the description memory or the queue, and never logs. Callers
// fetch manifests and referrers and act on the verdict.
package photo
