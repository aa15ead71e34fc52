package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regscribe/regscribe/internal/photo"
)

// PageSize is how many photos a repository page or a page of search results shows.
const PageSize = 60

// pager is the navigation between pages of PageSize.
type pager struct {
	Page, Pages int
	Prev, Next  string
	From, To    int
	// Ranked: the pages are in order of relevance (Previous/Next), not
	// of time (Newer/Older).
	Ranked bool
}

func newPager(base string, pageNum, total int) pager {
	p := pager{Page: pageNum, Pages: max(1, (total+PageSize-1)/PageSize)}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	if pageNum > 1 {
		p.Prev = base + sep + "page=" + strconv.Itoa(pageNum-1)
	}
	if pageNum < p.Pages {
		p.Next = base + sep + "page=" + strconv.Itoa(pageNum+1)
	}
	if total > 0 {
		p.From = (pageNum-1)*PageSize + 1
		p.To = min(total, pageNum*PageSize)
	}
	return p
}

// pageNumber reads ?page= (1 when absent or not a number; at most the
// page that starts at MaxOffset).
func pageNumber(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, MaxOffset/PageSize+1)
}

type photoData struct {
	// Shown is the description shown first (a person's, else the newest).
	Shown Entry
	// History is every description of this photo: the current ones,
	// newest first, then those replaced (Superseded set: a correction or
	// another model's description re-pushed in annotation mode), most
	// recently replaced first.
	History []Entry
	// ShownAt is Shown's place in History: every other one can be restored.
	ShownAt int
	// Others are the other photos of the same manifest (an album, or a
	// manifest with several image layers).
	Others []Entry
	// Tags of the manifest, Ref its reference.
	Tags                                   []string
	Ref, Manifest                          string
	PullCommand, FetchCommand, DiscoverCmd string
	Keywords                               string
	// Like is the address of the photos like it ("" without semantic search).
	Like string
	// Steps lead to the photos before and after it in the list the page
	// was opened from, and back to that list.
	Steps steps
}

func (s *Server) photo(w http.ResponseWriter, r *http.Request) {
	reg := s.registryName(r.PathValue("registry"))
	if !strings.Contains(r.PathValue("ref"), "@") {
		s.byTag(w, r, reg, r.PathValue("ref"))
		return
	}
	data, _, ok := s.photoAt(w, r)
	if !ok {
		return
	}
	if s.opts.Catalog.Semantic() {
		data.Like = likeURL(data.Shown)
	}
	data.Steps = steps{Back: repoURL(data.Shown.Registry, data.Shown.Repository), Label: data.Shown.Repository}
	if l, ok := listOf(r); ok {
		st, err := s.neighbours(r.Context(), l, data.Shown)
		if err != nil {
			s.opts.Log.Warn("photo page: its list cannot be read", "list", l.query(), "err", err)
		} else {
			data.Steps = st
		}
	}
	s.render(w, r, http.StatusOK, "photo", page{Title: cmp.Or(data.Shown.Title, shortDigest(data.Shown.Layer)), Nav: "gallery", Data: data})
}

// photoAt reads the photo the address names ({registry} and {ref},
// repository@digest) and the digest; it answers 404 or 500 itself.
func (s *Server) photoAt(w http.ResponseWriter, r *http.Request) (photoData, string, bool) {
	reg := s.registryName(r.PathValue("registry"))
	repo, digest, err := splitRef(r.PathValue("ref"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "No such photo", err)
		return photoData{}, "", false
	}
	entries, err := s.opts.Catalog.Photo(r.Context(), reg, repo, digest)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "The search index cannot be read", err)
		return photoData{}, "", false
	}
	data, ok := photoView(entries, digest)
	if !ok {
		s.waiting(w, r, reg, repo, digest)
		return photoData{}, "", false
	}
	return data, digest, true
}

// waiting shows a photo that is not described: queued, failed (why) or
// not an image (why).
func (s *Server) waiting(w http.ResponseWriter, r *http.Request, reg, repo, digest string) {
	t, ok, err := s.opts.Catalog.Waiting(r.Context(), reg, repo, digest)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "The search index cannot be read", err)
		return
	}
	if !ok {
		s.fail(w, r, http.StatusNotFound, "No such photo", fmt.Errorf("regscribe knows of no photo %s/%s@%s", reg, repo, digest))
		return
	}
	s.render(w, r, http.StatusOK, "waiting", page{Title: stateLabel(t.State) + " " + repo, Nav: "gallery", Data: t})
}

// photoView arranges a manifest's entries for the page of the photo
// addressed by digest (a layer, or the manifest: its first photo). The
// photo needs a current description; replaced ones are its history only.
func photoView(entries []Entry, digest string) (photoData, bool) {
	current := slices.DeleteFunc(slices.Clone(entries), replaced)
	if len(current) == 0 {
		return photoData{}, false
	}
	layer := current[0].Layer
	for _, e := range current {
		if e.Layer == digest {
			layer = digest
		}
	}
	var d photoData
	seen := map[string]bool{layer: true}
	for _, e := range current {
		if e.Layer == layer {
			d.History = append(d.History, e)
			continue
		}
		if !seen[e.Layer] {
			seen[e.Layer] = true
			d.Others = append(d.Others, e)
		}
	}
	slices.SortStableFunc(d.History, func(a, b Entry) int { return b.Created.Compare(a.Created) })
	var past []Entry
	for _, e := range entries {
		if replaced(e) && e.Layer == layer {
			past = append(past, e)
		}
	}
	slices.SortStableFunc(past, func(a, b Entry) int {
		return cmp.Or(b.Superseded.Compare(a.Superseded), b.Created.Compare(a.Created))
	})
	d.Shown = d.History[0]
	for i, e := range d.History {
		if photo.IsPerson(e.Model) {
			d.Shown, d.ShownAt = e, i
			break
		}
	}
	for _, e := range d.History {
		for _, t := range e.Tags {
			if !slices.Contains(d.Tags, t) {
				d.Tags = append(d.Tags, t)
			}
		}
	}
	slices.Sort(d.Tags)
	d.History = append(d.History, past...)
	d.Manifest = cmp.Or(d.Shown.Manifest, d.Shown.Digest)
	d.Ref = d.Shown.Registry + "/" + d.Shown.Repository + "@" + d.Shown.Digest
	d.PullCommand = "oras pull " + d.Ref
	d.FetchCommand = "oras manifest fetch --pretty " + d.Ref
	d.DiscoverCmd = "oras discover --format tree " + d.Ref
	d.Keywords = strings.Join(d.Shown.Keywords, ", ")
	return d, true
}

// replaced reports whether e is a description a newer one replaced.
func replaced(e Entry) bool { return !e.Superseded.IsZero() }

type searchData struct {
	Query string
	// Problem is why the query cannot be read, and how to write it.
	Problem string
	found
	Pager pager
	// Examples are the help's examples (the empty page, a query that
	// cannot be read, one that finds nothing).
	Examples examples
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	text := strings.TrimSpace(r.URL.Query().Get("q"))
	if text == "" {
		s.render(w, r, http.StatusOK, "search", page{Title: "Search", Nav: "search", Data: searchData{Examples: s.examplesOf(r.Context())}})
		return
	}
	pageNum := pageNumber(r)
	q, err := parseQuery(text)
	if err != nil {
		s.render(w, r, http.StatusBadRequest, "search", page{Title: text + " – search", Query: text, Nav: "search",
			Data: searchData{Query: text, Problem: err.Error(), Examples: s.examplesOf(r.Context())}})
		return
	}
	q.Limit, q.Offset = PageSize, (pageNum-1)*PageSize
	f, err := s.find(r.Context(), q)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "The search failed", err)
		return
	}
	s.blocks.put(blockKey{in: listSearch, query: text, block: pageNum - 1}, f.entries())
	data := searchData{Query: text, found: f, Pager: newPager("/search?q="+queryEscape(text), pageNum, f.Total)}
	data.Pager.Ranked = true
	if f.Total == 0 {
		data.Examples = s.examplesOf(r.Context())
	}
	s.render(w, r, http.StatusOK, "search", page{Title: text + " – search", Query: text, Nav: "search", Data: data})
}

// withTimeout bounds a page's reads of the queue.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 10*time.Second)
}
