package index

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"
)

// rrfK is the constant of reciprocal rank fusion: score = Σ 1/(rrfK + rank).
const rrfK = 60

// candidates is how many hits of each ranking (text, vectors) are fused,
// at least.
const candidates = 100

// Search returns the best hits of q and how many match in all. Without
// free text it lists the matching entries newest first. With an Embedder
// whose vectors are there, the query is embedded too and the text and
// vector rankings are fused; when that fails (the model is down, or
// slower than Options.QueryTimeout) the search is text only and a warning
// is logged.
func (ix *Index) Search(ctx context.Context, q Query) ([]Hit, int, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Offset = max(q.Offset, 0)
	text, hasText := ix.textQuery(q)
	filter := ix.filters(q)
	if ix.vec != nil && strings.TrimSpace(q.Text) != "" && ix.vec.has() {
		// The text is ranked while the query is embedded.
		want := ix.depth(q)
		ranked := ix.rankText(ctx, text, hasText, filter, want)
		if qvec := ix.embedQuery(ctx, q.Text); qvec != nil {
			return ix.hybrid(ctx, q, ranked, filter, qvec, want)
		}
		_, _ = ranked()
	}
	if !hasText {
		if strings.TrimSpace(q.Text) != "" {
			return []Hit{}, 0, nil // only words the analyzer drops
		}
		return ix.newest(ctx, q, filter)
	}
	return ix.textOnly(ctx, q, text, filter)
}

// depth is how many of the best entries each ranking of a fused search
// holds to show q's page: enough for the page and at least candidates,
// but never more than the index holds, so a page far past the end costs
// what the last page costs, not what its offset says.
func (ix *Index) depth(q Query) int {
	end := q.Offset + q.Limit
	if end < q.Offset {
		end = math.MaxInt // overflow: past any end
	}
	want := max(candidates, end)
	if n, err := ix.bi.DocCount(); err == nil && uint64(want) > n {
		want = int(n)
	}
	return want
}

func conjunction(qs ...query.Query) query.Query {
	qs = slices.DeleteFunc(qs, func(q query.Query) bool { return q == nil })
	if len(qs) == 0 {
		return bleve.NewMatchAllQuery()
	}
	return bleve.NewConjunctionQuery(qs...)
}

// newest lists the entries that pass the filters, newest first.
func (ix *Index) newest(ctx context.Context, q Query, filter []query.Query) ([]Hit, int, error) {
	req := bleve.NewSearchRequestOptions(conjunction(filter...), q.Limit, q.Offset, false)
	req.Fields = []string{fSource}
	req.SortBy([]string{"-" + fCreated, "_id"})
	res, err := ix.bi.SearchInContext(ctx, req)
	if err != nil {
		return nil, 0, fmt.Errorf("index: search: %w", err)
	}
	hits := make([]Hit, 0, len(res.Hits))
	for _, h := range res.Hits {
		if d := docFromFields(h.Fields); d != nil {
			hits = append(hits, Hit{Entry: d.entry()})
		}
	}
	return hits, int(res.Total), nil
}

// textOnly ranks by BM25.
func (ix *Index) textOnly(ctx context.Context, q Query, text query.Query, filter []query.Query) ([]Hit, int, error) {
	req := bleve.NewSearchRequestOptions(conjunction(append([]query.Query{text}, filter...)...), q.Limit, q.Offset, false)
	req.Fields = []string{fSource}
	res, err := ix.bi.SearchInContext(ctx, req)
	if err != nil {
		return nil, 0, fmt.Errorf("index: search: %w", err)
	}
	hits := make([]Hit, 0, len(res.Hits))
	for _, h := range res.Hits {
		if d := docFromFields(h.Fields); d != nil {
			hits = append(hits, Hit{Entry: d.entry(), Score: h.Score})
		}
	}
	return hits, int(res.Total), nil
}

// embedQuery embeds the query text, or returns nil (and logs why).
func (ix *Index) embedQuery(ctx context.Context, text string) []float32 {
	ctx, cancel := context.WithTimeout(ctx, ix.opts.QueryTimeout)
	defer cancel()
	vs, err := ix.opts.Embedder.Embed(ctx, []string{text})
	if err == nil && (len(vs) != 1 || len(vs[0]) == 0) {
		err = fmt.Errorf("%d vectors for 1 text", len(vs))
	}
	if err != nil {
		ix.log.Warn("search is text only: the query could not be embedded", "model", ix.opts.Embedder.Model(), "error", err.Error())
		return nil
	}
	return normalise(vs[0])
}

// rankText starts ranking the best want entries by text (none without
// text) and returns a function that waits for the ranking.
func (ix *Index) rankText(ctx context.Context, text query.Query, hasText bool, filter []query.Query, want int) func() (*bleve.SearchResult, error) {
	if !hasText {
		return func() (*bleve.SearchResult, error) { return &bleve.SearchResult{}, nil }
	}
	var (
		res  *bleve.SearchResult
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		req := bleve.NewSearchRequestOptions(conjunction(append([]query.Query{text}, filter...)...), want, 0, false)
		res, err = ix.bi.SearchInContext(ctx, req)
	}()
	return func() (*bleve.SearchResult, error) {
		<-done
		if err != nil {
			return nil, fmt.Errorf("index: search: %w", err)
		}
		return res, nil
	}
}

// hybrid fuses the text ranking and the vector ranking of the best want
// entries each.
func (ix *Index) hybrid(ctx context.Context, q Query, ranked func() (*bleve.SearchResult, error), filter []query.Query, qvec []float32, want int) ([]Hit, int, error) {
	near := ix.vec.nearest(qvec, want, ix.opts.MinSimilarity)
	res, err := ranked()
	if err != nil {
		return nil, 0, err
	}
	fused := make(map[string]float64, len(res.Hits)+len(near))
	for i, h := range res.Hits {
		fused[h.ID] += 1 / float64(rrfK+i+1)
	}
	total := int(res.Total)
	if len(filter) > 0 && len(near) > 0 {
		// The filters decide which vector matches count.
		ids := make([]string, len(near))
		for i, n := range near {
			ids[i] = n.id.String()
		}
		req := bleve.NewSearchRequestOptions(conjunction(append([]query.Query{bleve.NewDocIDQuery(ids)}, filter...)...), len(ids), 0, false)
		res, err := ix.bi.SearchInContext(ctx, req)
		if err != nil {
			return nil, 0, fmt.Errorf("index: search: %w", err)
		}
		pass := map[string]bool{}
		for _, h := range res.Hits {
			pass[h.ID] = true
		}
		near = slices.DeleteFunc(near, func(n neighbour) bool { return !pass[n.id.String()] })
	}
	for i, n := range near {
		id := n.id.String()
		if _, ok := fused[id]; !ok {
			total++
		}
		fused[id] += 1 / float64(rrfK+i+1)
	}
	ids := make([]string, 0, len(fused))
	for id := range fused {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(fused[b], fused[a]), strings.Compare(a, b))
	})
	if q.Offset >= len(ids) {
		return []Hit{}, total, nil
	}
	ids = ids[q.Offset:min(len(ids), q.Offset+q.Limit)]
	docs, err := ix.docs(ids)
	if err != nil {
		return nil, 0, err
	}
	hits := make([]Hit, 0, len(ids))
	for _, id := range ids {
		if d := docs[id]; d != nil {
			hits = append(hits, Hit{Entry: d.entry(), Score: fused[id]})
		}
	}
	return hits, total, nil
}

// Repositories lists every repository with indexed photos, refusals or
// manifests waiting to be described, newest activity first.
func (ix *Index) Repositories(ctx context.Context) ([]Repository, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	c := &ix.repos
	if c.state != ix.state || c.changes != ix.changes || c.list == nil {
		*c = repoCache{state: ix.state, changes: ix.changes, list: ix.repositories()}
	}
	return slices.Clone(c.list), ctx.Err()
}

// repoCache is the list of repositories, made again only when a batch
// was written since.
type repoCache struct {
	state   *state
	changes uint64
	list    []Repository
}

// repositories counts the repositories' photos, from the gallery's list.
// The caller holds ix.mu.
func (ix *Index) repositories() []Repository {
	type agg struct {
		described, refused, queued, failed int
		latest                             int64
	}
	byRepo := map[string]*agg{}
	for _, t := range ix.list() { // newest first
		a := byRepo[t.repo]
		if a == nil {
			a = &agg{latest: t.at}
			byRepo[t.repo] = a
		}
		switch t.state {
		case StateDescribed:
			a.described++
		case StateRefused:
			a.refused++
		case StateFailed:
			a.failed++
		default:
			a.queued++
		}
	}
	out := make([]Repository, 0, len(byRepo))
	for repo, a := range byRepo {
		i := strings.Index(repo, "/")
		out = append(out, Repository{Registry: repo[:i], Repository: repo[i+1:], Photos: a.described, Refused: a.refused,
			Queued: a.queued, Failed: a.failed, Latest: time.Unix(a.latest, 0).UTC()})
	}
	slices.SortFunc(out, func(a, b Repository) int {
		return cmp.Or(b.Latest.Compare(a.Latest), strings.Compare(a.Registry, b.Registry), strings.Compare(a.Repository, b.Repository))
	})
	return out
}

// Photos lists one repository's photos, newest first, one Entry per photo
// (the description shown: a person's if any, else the newest), and the
// total for paging.
func (ix *Index) Photos(ctx context.Context, registry, repository string, offset, limit int) ([]Entry, int, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	type shown struct {
		id      docKey
		person  bool
		created int64
	}
	repo := registry + "/" + repository
	ix.mu.Lock()
	best := map[[16]byte]shown{}
	for id, m := range ix.state.docs {
		if m.repo != repo {
			continue
		}
		s, ok := best[m.layer]
		c := shown{id: id, person: m.person, created: m.created}
		if !ok || (c.person && !s.person) || (c.person == s.person && (c.created > s.created || c.created == s.created && bytes.Compare(c.id[:], s.id[:]) < 0)) {
			best[m.layer] = c
		}
	}
	ix.mu.Unlock()
	list := make([]shown, 0, len(best))
	for _, s := range best {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b shown) int {
		return cmp.Or(cmp.Compare(b.created, a.created), bytes.Compare(a.id[:], b.id[:]))
	})
	total := len(list)
	if offset >= total {
		return []Entry{}, total, ctx.Err()
	}
	list = list[max(offset, 0):min(total, max(offset, 0)+limit)]
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.id.String()
	}
	docs, err := ix.docs(ids)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Entry, 0, len(ids))
	for _, id := range ids {
		if d := docs[id]; d != nil {
			out = append(out, d.entry())
		}
	}
	return out, total, nil
}

// Photo returns every description (every describer) of the photos of one
// manifest digest (or of the manifests that hold a photo layer of that
// digest): the current ones first, newest first; then the photo's history,
// most recently replaced first: the descriptions superseded by a re-pushed
// manifest (annotation mode: a person's correction, another model's
// description), of this manifest and of every manifest it replaced,
// through the whole chain, each with Superseded and SupersededBy set.
func (ix *Index) Photo(ctx context.Context, registry, repository, digest string) ([]Entry, error) {
	repo, layer, asked := registry+"/"+repository, layerKey(digest), manifestKey(registry, repository, digest)
	var (
		ids      []string
		carriers = []string{asked}
		current  = map[docKey]bool{}
	)
	ix.mu.Lock()
	add := func(id docKey, m meta) {
		ids = append(ids, id.String())
		current[id] = true
		carriers = append(carriers, m.digest.key)
	}
	mf := ix.state.manifests[asked]
	if mf != nil {
		for _, id := range mf.docs {
			add(id, ix.state.docs[id])
		}
	}
	for id, m := range ix.state.docs {
		if m.layer == layer && m.repo == repo && m.digest.key != asked && (m.child == nil || m.child.key != asked) {
			add(id, m)
		}
	}
	// A layer digest: the history of that photo only.
	var only *[16]byte
	if mf == nil && !ix.state.hist.knows(asked) {
		only = &layer
	}
	hids := ix.historyIDs(carriers, only, current)
	ix.mu.Unlock()
	docs, err := ix.docs(ids)
	if err != nil {
		return nil, fmt.Errorf("index: photo %s: %w", asked, err)
	}
	past, err := ix.historyDocs(hids)
	if err != nil {
		return nil, fmt.Errorf("index: photo %s: %w", asked, err)
	}
	slices.Sort(ids)
	slices.SortStableFunc(ids, func(a, b string) int {
		da, db := docs[a], docs[b]
		if da == nil || db == nil {
			return 0
		}
		return db.Created.Compare(da.Created)
	})
	out := make([]Entry, 0, len(ids)+len(past))
	for _, id := range ids {
		if d := docs[id]; d != nil {
			out = append(out, d.entry())
		}
	}
	for _, d := range past {
		out = append(out, d.entry())
	}
	return out, ctx.Err()
}
