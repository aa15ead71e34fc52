package web

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/thumb"
)

// thumbSizes maps a thumbnail URL's size to pixels: the grid's tiles, the
// photo page's picture, and the photo at 100% (zoom and download).
var thumbSizes = map[string]int{"s": thumb.Grid, "l": thumb.Preview, "f": thumb.Full}

// thumbnail is GET /thumbs/{s|l|f}/{registry}/{repository}@{layer}: the layer
// must be a photo the index knows in that repository of a configured
// registry, or the digest a manifest the index knows as waiting to be
// described (its first photo is shown). What fails to decode is a
// placeholder, never the blob.
func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request) {
	size, ok := thumbSizes[r.PathValue("size")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	p, _, ok := s.shownPhoto(w, r, true)
	if !ok {
		return
	}
	b, err := s.picture(r.Context(), p, size)
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(b)
	case errors.Is(err, context.Canceled):
	default:
		s.placeholder(w, r)
	}
}

// download is GET /download/{registry}/{repository}@{layer}: the photo at
// full size as a JPEG file to save. It is the picture the gallery made
// (decoded and re-encoded, like every thumbnail), never the registry's
// bytes: what a user pushed is not served from the gallery's origin, not
// even as an attachment. The original is one `oras pull` away, and the
// photo page shows that command.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	p, e, ok := s.shownPhoto(w, r, false)
	if !ok {
		return
	}
	b, err := s.picture(r.Context(), p, thumb.Full)
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Disposition", `attachment; filename="`+downloadName(e)+`"`)
		w.Header().Set("Cache-Control", "private, max-age=3600")
		_, _ = w.Write(b)
	case errors.Is(err, context.Canceled):
	case errors.Is(err, thumb.ErrNotPhoto), errors.Is(err, thumb.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, "This photo cannot be downloaded", err)
	default:
		s.fail(w, r, http.StatusBadGateway, "The registry did not give the photo", err)
	}
}

// shownPhoto finds the photo a thumbnail or download address names: a
// current description's layer in that repository of a configured registry.
// It answers 404 (or 500) itself when there is none.
//
// With waiting, a manifest not described yet (queued or failed) has its
// first photo stand for it (Entry is then empty): the grid's tile of a push
// shows its picture before any description.
func (s *Server) shownPhoto(w http.ResponseWriter, r *http.Request, waiting bool) (thumb.Photo, Entry, bool) {
	reg := s.registryName(r.PathValue("registry"))
	repo, layer, err := splitRef(r.PathValue("ref"))
	if err != nil || !s.opts.Registry.Allowed(reg) {
		http.NotFound(w, r)
		return thumb.Photo{}, Entry{}, false
	}
	entries, err := s.opts.Catalog.Photo(r.Context(), reg, repo, layer)
	if err != nil {
		s.opts.Log.Error("thumbnail: index", "err", err)
		http.Error(w, "the search index cannot be read", http.StatusInternalServerError)
		return thumb.Photo{}, Entry{}, false
	}
	for _, e := range entries {
		if e.Layer == layer && e.Repository == repo && !replaced(e) {
			return thumb.Photo{Registry: reg, Repository: repo, Manifest: cmp.Or(e.Manifest, e.Digest), Layer: layer}, e, true
		}
	}
	if waiting {
		t, ok, err := s.opts.Catalog.Waiting(r.Context(), reg, repo, layer)
		if err == nil && ok && t.State != index.StateRefused {
			ctx, cancel := context.WithTimeout(r.Context(), 25*time.Second)
			defer cancel()
			first, err := s.thumbs.First(ctx, thumb.Photo{Registry: reg, Repository: repo, Manifest: t.Digest})
			if err == nil {
				return first, Entry{}, true
			}
			s.placeholder(w, r)
			return thumb.Photo{}, Entry{}, false
		}
	}
	http.NotFound(w, r)
	return thumb.Photo{}, Entry{}, false
}

// picture is p at size from the thumbnail cache; failures other than a
// layer that is no photo are logged.
func (s *Server) picture(ctx context.Context, p thumb.Photo, size int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	b, err := s.thumbs.Get(ctx, p, size)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, thumb.ErrNotPhoto) && !errors.Is(err, thumb.ErrNotFound) {
		s.opts.Log.Warn("thumbnail", "photo", p.Registry+"/"+p.Repository+"@"+p.Layer, "err", err)
	}
	return b, err
}

// downloadName is the file name a download is saved as: the photo's own
// name (its title) with .jpg, else the layer digest's first characters.
// Only letters, digits, '-', '_' and '.' are kept.
func downloadName(e Entry) string {
	base := strings.TrimSuffix(path.Base(e.Title), path.Ext(e.Title))
	if e.Title == "" || base == "." || base == "/" {
		base = strings.ReplaceAll(shortDigest(e.Layer), ":", "-")
	}
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, base)
	if clean = strings.Trim(clean, "._"); clean == "" {
		clean = "photo"
	}
	return clean + ".jpg"
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
