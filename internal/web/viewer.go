package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regscribe/regscribe/internal/fault"
)

// Lists a photo page can be opened from, as its address's ?in= says.
const (
	// listRepository is the grid of the photo's own repository (addresses
	// made before the grid was the repository's page).
	listRepository = "repo"
	// listSearch is the results of ?q=, in their order.
	listSearch = "search"
	// listGrid is the gallery's grid, newest first: every photo (q
	// empty), a registry's (q: the registry) or a repository's (q:
	// registry/repository), whatever their state.
	listGrid = "grid"
)

// list is where a photo page was opened from and the photo's place in it
// (At, from 0). It travels in the photo page's address (?in=&q=&at=), so
// that the previous and next photos are found on the server, and a link or
// a reload keeps them.
type list struct {
	In    string
	Query string
	At    int
}

// listOf reads a photo page's ?in=, ?q= and ?at=; ok is false when the
// page was not opened from a list (or the address names none we know).
func listOf(r *http.Request) (list, bool) {
	v := r.URL.Query()
	at, err := strconv.Atoi(v.Get("at"))
	if err != nil || at < 0 || at > MaxOffset {
		return list{}, false
	}
	l := list{In: v.Get("in"), Query: strings.TrimSpace(v.Get("q")), At: at}
	switch {
	case l.In == listRepository:
		l.Query = ""
	case l.In == listSearch && l.Query != "":
	case l.In == listGrid:
	default:
		return list{}, false
	}
	return l, true
}

// query is the list in a photo page's address, without the '?'.
func (l list) query() string {
	q := "in=" + url.QueryEscape(l.In)
	if l.Query != "" {
		q += "&q=" + url.QueryEscape(l.Query)
	}
	return q + "&at=" + strconv.Itoa(l.At)
}

// viewURL is the address of e's page opened from l.
func (l list) viewURL(e Entry) string {
	return photoURL(e.Registry, e.Repository, photoDigest(e)) + "?" + l.query()
}

// gridScope is the registry and repository a grid list shows ("" and "":
// every photo).
func (l list) gridScope() (registry, repository string) {
	registry, repository, _ = strings.Cut(l.Query, "/")
	return registry, repository
}

// backURL is the page of the list that shows the photo at l.At, scrolled to it.
func (l list) backURL(e Entry) string {
	page := l.At/PageSize + 1
	base := repoURL(e.Registry, e.Repository)
	switch l.In {
	case listSearch:
		base = "/search?q=" + queryEscape(l.Query)
	case listGrid:
		page = l.At/GridPage + 1
		base = "/"
		if reg, repo := l.gridScope(); reg != "" {
			base = repoURL(reg, repo)
		}
	}
	if page > 1 {
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		base += sep + "page=" + strconv.Itoa(page)
	}
	return base + "#" + cardID(l.At)
}

// cardID is the id of the card at place at of a list page.
func cardID(at int) string { return "at-" + strconv.Itoa(at) }

// window returns the photos of l from offset, at most limit of them.
func (s *Server) window(ctx context.Context, l list, e Entry, offset, limit int) ([]Entry, error) {
	switch l.In {
	case listRepository, listGrid:
		reg, repo := l.gridScope()
		if l.In == listRepository { // the grid of the photo's repository
			reg, repo = e.Registry, e.Repository
		}
		ts, _, err := s.opts.Catalog.Tiles(ctx, reg, repo, offset, limit)
		es := make([]Entry, len(ts))
		for i, t := range ts {
			es[i] = t.Entry
		}
		return es, err
	}
	q, err := parseQuery(l.Query)
	if err != nil {
		return nil, err
	}
	q.Offset, q.Limit = offset, limit
	f, err := s.find(ctx, q)
	if err != nil {
		return nil, err
	}
	return f.entries(), nil
}

// steps is a photo page's way through its list.
type steps struct {
	// Back is the list's page that shows the photo; Label names the list.
	Back, Label string
	// Prev and Next are the neighbours' pages ("" at either end).
	Prev, Next string
	// NextPicture is the next photo's picture, fetched ahead by the
	// browser so that → shows it at once.
	NextPicture string
	// At is the photo's place in the list, from 1 (0: not found there).
	At int
}

// reach is how far from its place in the address a photo is looked for,
// when the list changed since the address was made (a photo added).
const reach = PageSize

// neighbours finds the photos before and after e in l. The list is read
// in blocks of PageSize, the blocks a list page shows, kept a little while
// ([blocks]): the page a photo was opened from has read the photo's block
// already, and each step through it reads nothing more. A photo no longer
// at its place (the list changed) is looked for reach places around it.
func (s *Server) neighbours(ctx context.Context, l list, e Entry) (steps, error) {
	st := steps{Label: "the search results", Back: l.backURL(e)}
	switch l.In {
	case listRepository:
		st.Label = e.Repository
	case listGrid:
		st.Label = "all photos"
		if reg, repo := l.gridScope(); reg != "" {
			st.Label = cmp.Or(repo, reg)
		}
	}
	same := func(x Entry) bool {
		return x.Layer == e.Layer && x.Registry == e.Registry && x.Repository == e.Repository
	}
	// at returns the photo at place n of the list (ok false past its end).
	at := func(n int) (Entry, bool, error) {
		if n < 0 {
			return Entry{}, false, nil
		}
		es, err := s.block(ctx, l, e, n/PageSize)
		if err != nil || n%PageSize >= len(es) {
			return Entry{}, false, err
		}
		return es[n%PageSize], true, nil
	}
	here, ok, err := at(l.At)
	if err != nil {
		return st, err
	}
	var prev, next Entry
	var hasPrev, hasNext bool
	if ok && same(here) {
		if prev, hasPrev, err = at(l.At - 1); err != nil {
			return st, err
		}
		if next, hasNext, err = at(l.At + 1); err != nil {
			return st, err
		}
	} else {
		from := max(0, l.At-reach)
		es, err := s.window(ctx, l, e, from, l.At-from+reach+1)
		if err != nil {
			return st, err
		}
		i := slices.IndexFunc(es, same)
		if i < 0 {
			return st, nil
		}
		l.At = from + i
		st.Back = l.backURL(e)
		if hasPrev = i > 0; hasPrev {
			prev = es[i-1]
		}
		if hasNext = i+1 < len(es); hasNext {
			next = es[i+1]
		}
	}
	st.At = l.At + 1
	// Near a block's end, the next block is read ahead, so that the step
	// into it finds it read.
	switch i := l.At % PageSize; {
	case i >= PageSize-prefetch && hasNext:
		s.readAhead(l, e, l.At/PageSize+1)
	case i < prefetch && l.At >= PageSize:
		s.readAhead(l, e, l.At/PageSize-1)
	}
	if hasPrev {
		st.Prev = list{In: l.In, Query: l.Query, At: l.At - 1}.viewURL(prev)
	}
	if hasNext {
		st.Next = list{In: l.In, Query: l.Query, At: l.At + 1}.viewURL(next)
		st.NextPicture = thumbURL(next, "l")
	}
	return st, nil
}

// prefetch is how near a block's end a photo page reads the next block ahead.
const prefetch = 3

// readAhead reads block b of l in the background, unless it is kept
// already or being read.
func (s *Server) readAhead(l list, e Entry, b int) {
	k := l.blockKey(e, b)
	if _, ok := s.blocks.get(k); ok || !s.blocks.start(k) {
		return
	}
	s.wg.Go(func() {
		defer s.blocks.done(k)
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		if _, err := s.block(ctx, l, e, b); err != nil && ctx.Err() == nil {
			s.opts.Log.Warn("photo page: the list cannot be read ahead", "list", l.query(), "err", err)
		}
	})
}

// blockKey names block b of l, whose photo e is.
func (l list) blockKey(e Entry, b int) blockKey {
	k := blockKey{in: l.In, query: l.Query, block: b}
	if l.In == listRepository {
		k.repository = e.Registry + "/" + e.Repository
	}
	return k
}

// block is block b of l (places b×PageSize to (b+1)×PageSize-1), from
// [blocks] or read.
func (s *Server) block(ctx context.Context, l list, e Entry, b int) ([]Entry, error) {
	k := l.blockKey(e, b)
	if es, ok := s.blocks.get(k); ok {
		return es, nil
	}
	es, err := s.window(ctx, l, e, b*PageSize, PageSize)
	if err != nil {
		return nil, err
	}
	s.blocks.put(k, es)
	return es, nil
}

// Blocks of lists are kept blockTTL at most, and at most maxBlocks of them:
// a list that changed (a photo pushed or corrected) shows so within
// blockTTL, and a photo that moved is found by [Server.neighbours] anyway.
const (
	blockTTL  = 30 * time.Second
	maxBlocks = 256
	// maxReading bounds the blocks read ahead at once.
	maxReading = 4
)

// blockKey names one block of one list.
type blockKey struct {
	in, query, repository string
	block                 int
}

// blocks keeps the blocks of lists read lately, for the photo pages'
// previous and next.
type blocks struct {
	mu sync.Mutex
	m  map[blockKey]block
	// reading are the blocks being read ahead.
	reading map[blockKey]bool
}

// start marks k as being read ahead; false if it is already.
func (c *blocks) start(k blockKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reading[k] || len(c.reading) >= maxReading {
		return false
	}
	if c.reading == nil {
		c.reading = map[blockKey]bool{}
	}
	c.reading[k] = true
	return true
}

func (c *blocks) done(k blockKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reading, k)
}

type block struct {
	entries []Entry
	read    time.Time
}

func (c *blocks) get(k blockKey) ([]Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[k]
	if !ok || time.Since(b.read) > blockTTL {
		return nil, false
	}
	return b.entries, true
}

// put keeps es as block k; when full, the blocks read longest ago go first.
func (c *blocks) put(k blockKey, es []Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[blockKey]block{}
	}
	for len(c.m) >= maxBlocks {
		var oldest blockKey
		var at time.Time
		for k, b := range c.m {
			if at.IsZero() || b.read.Before(at) {
				oldest, at = k, b.read
			}
		}
		delete(c.m, oldest)
	}
	c.m[k] = block{entries: slices.Clone(es), read: time.Now()}
}

// tagPattern is the OCI distribution spec's tag.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// splitTag splits "repository:tag"; ok is false for anything else.
func splitTag(ref string) (repository, tag string, ok bool) {
	i := strings.LastIndex(ref, ":")
	if i <= 0 || strings.Contains(ref[i:], "/") || !tagPattern.MatchString(ref[i+1:]) {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// byTag answers a photo page addressed by tag (/p/{registry}/{repository}:{tag},
// or without a tag: the repository's page):
// the registry says which manifest the tag names now, and the page
// redirects to that photo's address by digest, which stays the canonical
// one (a tag moves; a digest names one photo for ever).
func (s *Server) byTag(w http.ResponseWriter, r *http.Request, reg, ref string) {
	repoName, tag, ok := splitTag(ref)
	if !ok && !strings.Contains(ref, ":") {
		// No tag: the repository's page.
		http.Redirect(w, r, repoURL(reg, ref), http.StatusFound)
		return
	}
	if !ok {
		s.fail(w, r, http.StatusNotFound, "No such photo", fmt.Errorf("%q is neither repository@digest nor repository:tag", ref))
		return
	}
	repo, err := s.opts.Registry.Repository(reg, repoName)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "No such photo", err)
		return
	}
	desc, err := s.opts.Registry.Resolve(r.Context(), repo, tag)
	switch {
	case fault.Is(err, fault.KindSkip) || fault.Is(err, fault.KindPermanent):
		s.fail(w, r, http.StatusNotFound, "No such tag", fmt.Errorf("%s/%s has no tag %s", reg, repoName, tag))
		return
	case err != nil:
		s.fail(w, r, http.StatusBadGateway, "The registry cannot say what this tag names", err)
		return
	}
	entries, err := s.opts.Catalog.Photo(r.Context(), reg, repoName, desc.Digest.String())
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "The search index cannot be read", err)
		return
	}
	d, ok := photoView(entries, desc.Digest.String())
	if !ok {
		s.fail(w, r, http.StatusNotFound, "No description of this photo yet",
			fmt.Errorf("%s/%s:%s names manifest %s, which the index has no description of", reg, repoName, tag, desc.Digest))
		return
	}
	to := photoURL(d.Shown.Registry, d.Shown.Repository, d.Shown.Layer)
	if r.URL.RawQuery != "" {
		to += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// notFound is every address no route knows: the styled error page, with
// the search box and a way back, status 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusNotFound, "No such page", fmt.Errorf("nothing lives at %s", r.URL.Path))
}

// likeCount is how many photos "Photos like this" shows.
const likeCount = 24

type likeData struct {
	Photo Entry
	Like  []Entry
}

func likeURL(e Entry) string {
	return "/like/" + pathEscape(e.Registry) + "/" + pathEscapeRepo(e.Repository) + "@" + e.Layer
}

// like is GET /like/{registry}/{repository}@{layer}: the photos whose
// descriptions mean the most nearly what this photo's says, by their
// description vectors. Without semantic search there is no such page.
func (s *Server) like(w http.ResponseWriter, r *http.Request) {
	if !s.opts.Catalog.Semantic() {
		s.fail(w, r, http.StatusNotFound, "No photos like this", errors.New("semantic search is off: set an embedding model (the Search section of the README)"))
		return
	}
	d, layer, ok := s.photoAt(w, r)
	if !ok {
		return
	}
	if d.Shown.Layer != layer {
		s.fail(w, r, http.StatusNotFound, "No such photo", fmt.Errorf("%s is no photo's layer", layer))
		return
	}
	hits, err := s.opts.Catalog.Similar(r.Context(), d.Shown.Registry, d.Shown.Repository, layer, likeCount)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "The search index cannot be read", err)
		return
	}
	data := likeData{Photo: d.Shown}
	for _, h := range hits {
		data.Like = append(data.Like, h.Entry)
	}
	s.render(w, r, http.StatusOK, "like", page{Title: "Photos like " + cmp.Or(d.Shown.Title, shortDigest(layer)), Nav: "search", Data: data})
}
