package web

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// GridPage is how many photos a page of the gallery's grid shows (the
// front page, a registry's, a repository's); scrolling loads the next.
const GridPage = 120

// galleryData is a page of the gallery's grid: every photo, or those of a
// registry or a repository (the filter), newest first, with the sidebar.
type galleryData struct {
	// Registry and Repository are the filter (empty: none).
	Registry, Repository string
	Tiles                []Tile
	// Total counts the tiles the filter shows; Queued, Failed and
	// Refused those not described, and Photos those that are photos (all
	// but Refused).
	Total, Queued, Failed, Refused, Photos int
	// Pager's Next is the "more" link the page loads as it is scrolled.
	Pager    pager
	Sidebar  []registryView
	AllCount int
}

// registryView is a registry of the sidebar and its repositories.
type registryView struct {
	Host         string
	Photos       int
	Selected     bool
	Repositories []repoView
}

// repoView is a repository of the sidebar: its photos whatever their state.
type repoView struct {
	Registry, Repository string
	Photos               int
	Selected             bool
}

// home is GET /: every photo, newest first.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	s.gallery(w, r, "", "")
}

// repository is GET /r/{registry}/{repository...}: the grid of one
// repository, or of a registry when the repository is empty.
func (s *Server) repository(w http.ResponseWriter, r *http.Request) {
	s.gallery(w, r, s.registryName(r.PathValue("registry")), strings.Trim(r.PathValue("repository"), "/"))
}

// gallery renders a page of the grid, filtered by registry and repository.
func (s *Server) gallery(w http.ResponseWriter, r *http.Request, reg, repo string) {
	ctx := r.Context()
	repos, err := s.opts.Catalog.Repositories(ctx)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "The search index cannot be read", err)
		return
	}
	data := galleryData{Registry: reg, Repository: repo}
	data.Sidebar, data.AllCount = s.sidebar(repos, reg, repo)
	for _, rp := range repos {
		if (reg == "" || rp.Registry == reg) && (repo == "" || rp.Repository == repo) {
			data.Queued += rp.Queued
			data.Failed += rp.Failed
			data.Refused += rp.Refused
		}
	}
	pageNum := min(pageNumber(r), MaxOffset/GridPage+1)
	data.Tiles, data.Total, err = s.opts.Catalog.Tiles(ctx, reg, repo, (pageNum-1)*GridPage, GridPage)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "The search index cannot be read", err)
		return
	}
	title, base := "Photos", "/"
	if reg != "" {
		base = repoURL(reg, repo)
		title = cmp.Or(repo, reg)
		if data.Total == 0 {
			s.fail(w, r, http.StatusNotFound, "No photos here yet", fmt.Errorf("regscribe knows of no photo pushed to %s", strings.TrimSuffix(reg+"/"+repo, "/")))
			return
		}
	}
	data.Photos = max(data.Total-data.Refused, 0)
	data.Pager = newGridPager(base, pageNum, data.Total)
	s.render(w, r, http.StatusOK, "home", page{Title: title, Nav: "gallery", Data: data})
}

// sidebar lists every registry and repository the index knows, newest
// activity first, and the configured registries without photos after
// them, each with its photos whatever their state; and how many photos
// there are in all.
func (s *Server) sidebar(repos []Repository, reg, repo string) ([]registryView, int) {
	var out []registryView
	at := map[string]int{}
	add := func(host string) *registryView {
		i, ok := at[host]
		if !ok {
			i = len(out)
			at[host] = i
			out = append(out, registryView{Host: host, Selected: host == reg && repo == ""})
		}
		return &out[i]
	}
	all := 0
	for _, rp := range repos {
		n := rp.Photos + rp.Queued + rp.Failed + rp.Refused
		rv := add(rp.Registry)
		rv.Photos += n
		rv.Repositories = append(rv.Repositories, repoView{Registry: rp.Registry, Repository: rp.Repository, Photos: n,
			Selected: rp.Registry == reg && rp.Repository == repo})
		all += n
	}
	for _, host := range s.opts.Registries {
		add(s.registryName(host))
	}
	for i := range out {
		slices.SortStableFunc(out[i].Repositories, func(a, b repoView) int { return strings.Compare(a.Repository, b.Repository) })
	}
	return out, all
}

// newGridPager is the pager of a page of the grid: Next is the "more"
// link scrolling follows.
func newGridPager(base string, pageNum, total int) pager {
	p := pager{Page: pageNum, Pages: max(1, (total+GridPage-1)/GridPage)}
	if pageNum > 1 {
		p.Prev = base + "?page=" + strconv.Itoa(pageNum-1)
	}
	if pageNum < p.Pages {
		p.Next = base + "?page=" + strconv.Itoa(pageNum+1)
	}
	if total > 0 {
		p.From = (pageNum-1)*GridPage + 1
		p.To = min(total, pageNum*GridPage)
	}
	return p
}
