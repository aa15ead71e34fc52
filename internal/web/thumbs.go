package web

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/thumb"
)

// thumbSizes maps a thumbnail URL's size to pixels.
var thumbSizes = map[string]int{"s": thumb.Grid, "l": thumb.Preview}

// thumbnail is GET /thumbs/{s|l}/{registry}/{repository}@{layer}: the layer
// must be a photo the index knows in that repository of a configured
// registry, or the digest a manifest the index knows as waiting to be
// described (its first photo is shown). What fails to decode is a
// placeholder, never the blob.
func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request) {
	size, ok := thumbSizes[r.PathValue("size")]
	reg := s.registryName(r.PathValue("registry"))
	repo, layer, err := splitRef(r.PathValue("ref"))
	if !ok || err != nil || !s.opts.Registry.Allowed(reg) {
		http.NotFound(w, r)
		return
	}
	entries, err := s.opts.Catalog.Photo(r.Context(), reg, repo, layer)
	if err != nil {
		s.opts.Log.Error("thumbnail: index", "err", err)
		http.Error(w, "the search index cannot be read", http.StatusInternalServerError)
		return
	}
	var p *thumb.Photo
	for _, e := range entries {
		if e.Layer == layer && e.Repository == repo && !replaced(e) {
			p = &thumb.Photo{Registry: reg, Repository: repo, Manifest: cmp.Or(e.Manifest, e.Digest), Layer: layer}
			break
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 25*time.Second)
	defer cancel()
	if p == nil {
		// A manifest not described yet: its first photo stands for it.
		t, ok, err := s.opts.Catalog.Waiting(ctx, reg, repo, layer)
		if err != nil || !ok || t.State == index.StateRefused {
			http.NotFound(w, r)
			return
		}
		first, err := s.thumbs.First(ctx, thumb.Photo{Registry: reg, Repository: repo, Manifest: t.Digest})
		if err != nil {
			s.placeholder(w, r)
			return
		}
		p = &first
	}
	b, err := s.thumbs.Get(ctx, *p, size)
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(b)
	case errors.Is(err, context.Canceled):
	default:
		if !errors.Is(err, thumb.ErrNotPhoto) && !errors.Is(err, thumb.ErrNotFound) {
			s.opts.Log.Warn("thumbnail", "photo", reg+"/"+repo+"@"+layer, "err", err)
		}
		s.placeholder(w, r)
	}
}

// placeholder answers a thumbnail that cannot be made with the gallery's own
// picture, briefly cached (the registry may answer later).
func (s *Server) placeholder(w http.ResponseWriter, r *http.Request) {
	b, err := staticFS.ReadFile("static/placeholder.svg")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(b)
}
