package index

import (
	"bytes"
	"context"
)

// Semantic reports whether the index has an embedding model (search is
// semantic too, and [Index.Similar] can answer).
func (ix *Index) Semantic() bool { return ix.vec != nil }

// Similar returns the photos whose descriptions mean the most nearly what
// the shown description of the photo layer in registry/repository says:
// the vector of that description against every other one, best first, one
// entry per photo (its best-matching description), the photo itself left
// out, at most limit. It returns nothing without an embedding model or
// before the photo's description has a vector.
func (ix *Index) Similar(ctx context.Context, registry, repository, layer string, limit int) ([]Hit, error) {
	if ix.vec == nil || limit <= 0 {
		return nil, nil
	}
	repo, lk := registry+"/"+repository, layerKey(layer)
	// The description the photo's page shows: a person's, else the newest.
	var (
		id    docKey
		found bool
		best  meta
	)
	ix.mu.Lock()
	for k, m := range ix.state.docs {
		if m.repo != repo || m.layer != lk {
			continue
		}
		if !found || (m.person && !best.person) || (m.person == best.person && (m.created > best.created || m.created == best.created && bytes.Compare(k[:], id[:]) < 0)) {
			id, best, found = k, m, true
		}
	}
	ix.mu.Unlock()
	if !found {
		return nil, nil
	}
	q := ix.vec.vector(id)
	if q == nil {
		return nil, nil
	}
	// More than limit: the photo's other descriptions, and other
	// describers of one photo, are dropped below.
	near := ix.vec.nearest(q, 4*limit+4, ix.opts.MinSimilarity)
	ids := make([]string, 0, len(near))
	for _, n := range near {
		ids = append(ids, n.id.String())
	}
	docs, err := ix.docs(ids)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{repo + "@" + layer: true}
	hits := make([]Hit, 0, limit)
	for _, n := range near {
		d := docs[n.id.String()]
		if d == nil {
			continue
		}
		e := d.entry()
		k := e.Registry + "/" + e.Repository + "@" + e.Layer
		if seen[k] {
			continue
		}
		seen[k] = true
		hits = append(hits, Hit{Entry: e, Score: float64(n.sim)})
		if len(hits) == limit {
			break
		}
	}
	return hits, ctx.Err()
}
