package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/web"
)

// benchServer is a web server over a stack without workers whose index
// holds n photos of photos/bench (descriptions published on the stream)
// and one real photo of photos/real.
func benchServer(b *testing.B, n int) (*web.Server, *stacktest.Stack, string) {
	b.Helper()
	s := stacktest.Start(b, stacktest.Options{Workers: -1})
	cat := startCatalog(b, s.JS, s.Client.Names())
	pub := feed.NewPublisher(s.JS)
	ctx := context.Background()
	at := time.Now().UTC()
	for i := range n {
		digest := fmt.Sprintf("sha256:%064x", i+1)
		layer := fmt.Sprintf("sha256:%064x", i+1_000_000)
		_, err := pub.Publish(ctx, feed.Event{Kind: feed.Found, Registry: s.RegistryHost, Repository: "photos/bench", Digest: digest,
			Tags: []string{fmt.Sprintf("v%d", i)}, By: stacktest.Model, Photos: []feed.Photo{{
				Manifest: digest, Layer: layer, MediaType: "image/jpeg", Title: fmt.Sprintf("img-%04d.jpg", i),
				Description: fmt.Sprintf("Photo %d of a long series: a harbour with fishing boats, gulls over the pier and a lighthouse at dusk.", i),
				Alt:         "Harbour with boats at dusk", Keywords: []string{"harbour", "boats", "dusk", "lighthouse"},
				Model: "ollama/" + stacktest.Model, Created: at.Add(time.Duration(i) * time.Second), Stored: "annotation",
			}}}, "")
		require.NoError(b, err)
	}
	data := scenes[0].picture(b, 4000, 3000, 1)
	d := s.Push(b, "photos/real", "latest", stacktest.File{Name: "big.jpg", MediaType: "image/jpeg", Data: data})
	_, m := s.Manifest(b, "photos/real", d.Digest.String())
	_, err := pub.Publish(ctx, feed.Event{Kind: feed.Found, Registry: s.RegistryHost, Repository: "photos/real", Digest: d.Digest.String(),
		By: "person", Photos: []feed.Photo{{Manifest: d.Digest.String(), Layer: m.Layers[0].Digest.String(), MediaType: "image/jpeg",
			Description: "A lake.", Model: "person", Stored: "annotation"}}}, "")
	require.NoError(b, err)
	require.NoError(b, cat.Wait(ctx, s.JS))
	srv, err := web.New(web.Options{Catalog: cat, JetStream: s.JS, Registry: s.Client, Registries: []string{s.RegistryHost}, Leases: s.Leases,
		Model: "ollama/" + stacktest.Model, ThumbDir: b.TempDir(), Log: stacktest.Logger(b)})
	require.NoError(b, err)
	b.Cleanup(srv.Close)
	return srv, s, m.Layers[0].Digest.String()
}

func get200(b *testing.B, h http.Handler, path string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String())
	}
	return w.Body.Len()
}

// BenchmarkRepositoryPage1000 renders the first page of a repository of
// 1,000 described photos, from the request to the last byte.
func BenchmarkRepositoryPage1000(b *testing.B) {
	srv, s, _ := benchServer(b, 1000)
	path := "/r/" + s.RegistryHost + "/photos/bench"
	size := get200(b, srv, path)
	b.SetBytes(int64(size))
	for b.Loop() {
		get200(b, srv, path)
	}
}

// BenchmarkThumbnailFromCache serves a grid thumbnail already made (of a
// 12 MP JPEG), from the request to the last byte.
func BenchmarkThumbnailFromCache(b *testing.B) {
	srv, s, layer := benchServer(b, 0)
	path := "/thumbs/s/" + s.RegistryHost + "/photos/real@" + layer
	start := time.Now()
	get200(b, srv, path)
	b.Logf("made the thumbnail in %v", time.Since(start))
	for b.Loop() {
		get200(b, srv, path)
	}
}

// BenchmarkPhotoNext100k measures a photo page opened from a list of
// 100,000 photos, at place 50,000: the page with its previous and next
// photos, from the request to the last byte (what → asks for).
//
//   - repository (the grid of one repository), search: the step a person
//     takes: the block of the list around the photo was read already (by
//     the list's page, or the step before).
//   - repository-cold: every step lands in a block not read yet (the first
//     step past a list page's end), so the list is read around it.
func BenchmarkPhotoNext100k(b *testing.B) {
	const n, at = 100_000, 50_000
	srv, s, _ := benchServer(b, n)
	// Newest first: photo i is at place n-1-i of its repository.
	inRepo := func(at int) string {
		return fmt.Sprintf("/p/%s/photos/bench@sha256:%064x?in=grid&q=%s&at=%d", s.RegistryHost, n-1-at+1_000_000, url.QueryEscape(s.RegistryHost+"/photos/bench"), at)
	}
	b.Run("repository", func(b *testing.B) {
		path := inRepo(at)
		stepsBoth(b, srv, path)
		for b.Loop() {
			get200(b, srv, path)
		}
	})
	b.Run("repository-cold", func(b *testing.B) {
		place := at
		for b.Loop() {
			place += web.PageSize
			get200(b, srv, inRepo(place%(n-1)+1))
		}
	})
	b.Run("search", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/search?q=harbour&offset=%d&limit=1", at), nil)
		req.Host = "127.0.0.1"
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		var a web.SearchAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || len(a.Results) != 1 {
			b.Fatalf("search at %d: %v %s", at, err, w.Body.String())
		}
		path := fmt.Sprintf("/p/%s/photos/bench@%s?in=search&q=harbour&at=%d", s.RegistryHost, a.Results[0].Layer, at)
		stepsBoth(b, srv, path)
		for b.Loop() {
			get200(b, srv, path)
		}
	})
}

// stepsBoth fails unless the page at path has a previous and a next photo.
func stepsBoth(b *testing.B, h http.Handler, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), `id="next"`) || !strings.Contains(w.Body.String(), `id="prev"`) {
		b.Fatalf("GET %s: no previous and next photo", path)
	}
}
