package web

import (
	"cmp"
	"context"
	"path"
	"slices"
	"strings"
)

// examples are the search page's examples, in the library's own words.
type examples struct {
	// Words are two keywords many recent photos have, for "every word".
	Words []string
	// Either are two other keywords, for OR and for exclusion.
	Either []string
	// Repo is the last segment of a repository, for repo:.
	Repo string
	// Tag is a tag a photo has, for tag:.
	Tag string
}

// examplesOf reads the keywords of the newest photos of the most recently
// active repositories (a few index reads, done for the empty search page
// and a search that found nothing). With an empty library, or one whose
// photos have too few keywords, the fixed examples stay.
func (s *Server) examplesOf(ctx context.Context) examples {
	ex := examples{Words: []string{"forklift", "warehouse"}, Either: []string{"gerbera", "daisy"}, Repo: "garden", Tag: "latest"}
	repos, err := s.opts.Catalog.Repositories(ctx)
	if err != nil || len(repos) == 0 {
		return ex
	}
	ex.Repo = path.Base(repos[0].Repository)
	count := map[string]int{}
	tags := map[string]int{}
	for _, r := range repos[:min(len(repos), 4)] {
		photos, _, err := s.opts.Catalog.Photos(ctx, r.Registry, r.Repository, 0, 24)
		if err != nil {
			continue
		}
		for _, p := range photos {
			for _, k := range p.Keywords {
				if k = strings.ToLower(strings.TrimSpace(k)); k != "" && !strings.ContainsAny(k, " \"-:") {
					count[k]++
				}
			}
			for _, t := range p.Tags {
				tags[t]++
			}
		}
	}
	words := make([]string, 0, len(count))
	for k := range count {
		words = append(words, k)
	}
	slices.SortFunc(words, func(a, b string) int { return cmp.Or(count[b]-count[a], strings.Compare(a, b)) })
	if len(words) >= 4 {
		ex.Words, ex.Either = words[:2], words[2:4]
	}
	if len(tags) > 0 {
		ex.Tag = ""
		for t, n := range tags {
			if n > tags[ex.Tag] || n == tags[ex.Tag] && t < ex.Tag {
				ex.Tag = t
			}
		}
	}
	return ex
}
