package web_test

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestNotImagesAreCountedOnTheGallery: a text file pushed with oras's
// default media type is on the front page as not an image, and counted,
// beside the repository's described photos, and the jobs page lists it
// with the reason.
func TestNotImagesAreCountedOnTheGallery(t *testing.T) {
	t.Parallel()
	g := startGallery(t, "")
	g.Push(t, "photos/misc", "notes", stacktest.File{Name: "photo.jpg", MediaType: ocispec.MediaTypeImageLayer,
		Data: []byte("Dune is a 1965 novel by Frank Herbert.\n")})
	g.pushScene(t, "photos/misc", "dune", scenes[2], 1)
	require.Eventually(t, func() bool {
		_, n, err := g.Catalog.Refusals(context.Background(), 10)
		return err == nil && n == 1
	}, 30*time.Second, 20*time.Millisecond, "the refusal never reached the index")

	resp, body := request(t, http.MethodGet, g.URL+"/", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Regexp(t, regexp.MustCompile(`<a href="/jobs#refused">1 not an image</a>`), body)
	require.Regexp(t, regexp.MustCompile(`<p class="lead">1 photo\b`), body, "a manifest with no photo is no photo")
	require.Regexp(t, regexp.MustCompile(`<li class="tile" data-state="refused"`), body)
	require.Regexp(t, regexp.MustCompile(`<li class="tile" data-state="described"`), body)

	resp, body = request(t, http.MethodGet, g.URL+"/jobs", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body = html.UnescapeString(body)
	require.Contains(t, body, `<span class="n">1</span> not images`)
	require.Contains(t, body, `not an image: "photo.jpg" (application/vnd.oci.image.layer.v1.tar) holds text (text/plain; charset=utf-8), not a photo regscribe can describe`)
	require.Contains(t, body, g.RegistryHost+"/photos/misc@sha256:")
}
