package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/regscribe/regscribe/internal/fault"
)

// Lists a photo page can be opened from, as its address's ?in= says.
const (
	// listRepository is the page of the photo's own repository, newest first.
	listRepository = "repo"
	// listSearch is the results of ?q=, in their order.
	listSearch = "search"
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
	default:
		return list{}, false
	}
	return l, true
}

// query is the list in a photo page's address, without the '?'.
func (l list) query() string {
	v := url.Values{"in": {l.In}, "at": {strconv.Itoa(l.At)}}
	if l.Query != "" {
		v.Set("q", l.Query)
	}
	return v.Encode()
}

// viewURL is the address of e's page opened from l.
func (l list) viewURL(e Entry) string {
	return photoURL(e.Registry, e.Repository, photoDigest(e)) + "?" + l.query()
}

// backURL is the page of the list that shows the photo at l.At, scrolled to it.
func (l list) backURL(e Entry) string {
	page := l.At/PageSize + 1
	base := repoURL(e.Registry, e.Repository)
	if l.In == listSearch {
		base = "/search?q=" + queryEscape(l.Query)
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
	if l.In == listRepository {
		es, _, err := s.opts.Catalog.Photos(ctx, e.Registry, e.Repository, offset, limit)
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
	es := make([]Entry, len(f.Hits))
	for i, h := range f.Hits {
		es[i] = h.Entry
	}
	return es, nil
}

// steps is a photo page's way through its list.
type steps struct {
	// Back is the list's page that shows the photo; Label names the list.
	Back, Label string
	// Prev and Next are the neighbours' pages ("" at either end).
	Prev, Next string
	// At is the photo's place in the list, from 1 (0: not found there).
	At int
}

// reach is how far from its place in the address a photo is looked for,
// when the list changed since the address was made (a photo added).
const reach = PageSize

// neighbours finds the photos before and after e in l. The list is read
// around the photo's place only (three entries, or 2×reach+1 when the
// photo moved), so a step costs the same in a list of any length.
func (s *Server) neighbours(ctx context.Context, l list, e Entry) (steps, error) {
	st := steps{Label: "the search results", Back: l.backURL(e)}
	if l.In == listRepository {
		st.Label = e.Repository
	}
	same := func(x Entry) bool {
		return x.Layer == e.Layer && x.Registry == e.Registry && x.Repository == e.Repository
	}
	from := max(0, l.At-1)
	es, err := s.window(ctx, l, e, from, l.At-from+2)
	if err != nil {
		return st, err
	}
	i := l.At - from
	if i >= len(es) || !same(es[i]) {
		from = max(0, l.At-reach)
		if es, err = s.window(ctx, l, e, from, l.At-from+reach+1); err != nil {
			return st, err
		}
		if i = slices.IndexFunc(es, same); i < 0 {
			return st, nil
		}
		l.At = from + i
		st.Back = l.backURL(e)
	}
	st.At = l.At + 1
	if i > 0 {
		st.Prev = list{In: l.In, Query: l.Query, At: l.At - 1}.viewURL(es[i-1])
	}
	if i+1 < len(es) {
		st.Next = list{In: l.In, Query: l.Query, At: l.At + 1}.viewURL(es[i+1])
	}
	return st, nil
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

// byTag answers a photo page addressed by tag (/p/{registry}/{repository}:{tag}):
// the registry says which manifest the tag names now, and the page
// redirects to that photo's address by digest, which stays the canonical
// one (a tag moves; a digest names one photo for ever).
func (s *Server) byTag(w http.ResponseWriter, r *http.Request, reg, ref string) {
	repoName, tag, ok := splitTag(ref)
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
