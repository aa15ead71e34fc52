// Package index is the search index: a view of the description stream
// (internal/feed) on disk, rebuildable by deleting its directory.
//
// It owns the bleve v2 index under [Options.Dir] (pure Go "scorch", BM25,
// the analyzer of REGSCRIBE_LANGUAGE), its own durable consumer of the
// stream ([Index.Follow], named from an id kept in the directory, so every
// index process follows on its own and a restart resumes), the query
// language ([ParseQuery]) and, with an [Embedder], semantic search: every
// entry's text is embedded once, the vector remembered in the NATS KV
// bucket [VectorBucket] (so no text is ever embedded twice by one model,
// by this or another index), held in memory per embedding model and
// scanned exactly; text and vector ranks are fused (reciprocal rank
// fusion, k = 60).
//
// It also keeps the gallery's list ([Index.Tiles]): every photo newest
// first with its state, the described ones and the manifests announced and
// not described (queued, failed) or refused, as the stream says.
//
// It must not touch registries, the job queue or the environment: events
// in, entries out.
package index
