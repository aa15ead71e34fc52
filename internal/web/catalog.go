package web

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/index"
)

// Catalog is the search index as the gallery reads it; *index.Index is one.
type Catalog interface {
	// Search returns the best hits of q and how many match in all.
	Search(ctx context.Context, q Query) ([]Hit, int, error)
	// Suggest spells q's words as the index does, for a search that
	// found nothing; ok is false when no word changed.
	Suggest(ctx context.Context, q Query) (_ Query, ok bool, err error)
	// Repositories lists every repository with indexed photos (or photos
	// waiting, or refused), newest activity first.
	Repositories(ctx context.Context) ([]Repository, error)
	// Tiles lists the photos of the gallery's grid, newest first, whatever
	// their state: every one, a registry's (repository empty) or a
	// repository's; and how many there are.
	Tiles(ctx context.Context, registry, repository string, offset, limit int) ([]Tile, int, error)
	// Photos lists one repository's described photos, newest first (one
	// entry per photo), and the total: the list a photo page opened from
	// a repository steps through.
	Photos(ctx context.Context, registry, repository string, offset, limit int) ([]Entry, int, error)
	// Waiting returns a manifest that is not described (queued, failed or
	// refused) as a tile; ok is false when it is none of those.
	Waiting(ctx context.Context, registry, repository, digest string) (_ Tile, ok bool, err error)
	// Photo returns every description of the photos of a manifest digest
	// (or of the manifest a layer digest belongs to): the current ones,
	// newest first, then those a re-pushed manifest replaced (Superseded
	// set), most recently replaced first.
	Photo(ctx context.Context, registry, repository, digest string) ([]Entry, error)
	// Semantic reports whether search is semantic too (an embedding
	// model is configured): only then can Similar answer.
	Semantic() bool
	// Similar returns the photos whose descriptions mean the most nearly
	// what the photo's shown description says, best first, without it.
	Similar(ctx context.Context, registry, repository, layer string, limit int) ([]Hit, error)
	// Refusals lists the manifests read and found to hold no photo,
	// newest first, at most limit, and how many there are.
	Refusals(ctx context.Context, limit int) ([]Refusal, int, error)
	// Wait returns once every event stored in the description stream
	// before the call is applied.
	Wait(ctx context.Context, js jetstream.JetStream) error
}

var _ Catalog = (*index.Index)(nil)

// The index's types, as the gallery shows them.
type (
	// Entry is one photo's description by one describer.
	Entry = index.Entry
	// Hit is one search result.
	Hit = index.Hit
	// Repository is one repository with indexed photos.
	Repository = index.Repository
	// Query is a parsed search.
	Query = index.Query
	// Refusal is a manifest that holds no photo regscribe describes, and why.
	Refusal = index.Refusal
	// Tile is a photo of the grid with its state (index.State).
	Tile = index.Tile
)

// parseQuery reads what a person typed: words, "phrases", OR, -word,
// repo:, tag:, model:, after:, before: (the README's Search section). Its
// error says how to write what it could not read.
func parseQuery(s string) (Query, error) { return index.ParseQuery(s) }

// found is what a search found.
type found struct {
	Hits  []Hit
	Total int
	// Suggestion is set when the query's words found nothing and the
	// index holds nearer words: Hits are those of this query.
	Suggestion string
}

// find searches q and, when its words find nothing, the query spelled
// as the index does; the exact search comes first, so a typing error
// costs a second search and a search that finds something costs nothing
// more.
func (s *Server) find(ctx context.Context, q Query) (found, error) {
	hits, total, err := s.opts.Catalog.Search(ctx, q)
	if err != nil || total > 0 || q.Text == "" {
		return found{Hits: hits, Total: total}, err
	}
	better, ok, err := s.opts.Catalog.Suggest(ctx, q)
	if err != nil || !ok {
		return found{Hits: hits, Total: total}, err
	}
	hits, total, err = s.opts.Catalog.Search(ctx, better)
	return found{Hits: hits, Total: total, Suggestion: better.String()}, err
}

// entries are the photos found, in order.
func (f found) entries() []Entry {
	es := make([]Entry, len(f.Hits))
	for i, h := range f.Hits {
		es[i] = h.Entry
	}
	return es
}
