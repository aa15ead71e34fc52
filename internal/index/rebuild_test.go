package index_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestRebuiltIndexEqualsTheRunningOne: after writes, corrections, photos
// carried over to re-pushed manifests and deletions of replaced and
// current manifests, an index built from the stream (a new directory)
// shows what the index that followed every step shows: the same search
// results, photo pages (with their history) and repository listings.
func TestRebuiltIndexEqualsTheRunningOne(t *testing.T) {
	e := newEnv(t)
	live, _ := e.open(t.TempDir(), index.Options{})
	step := func(events ...feed.Event) {
		t.Helper()
		e.publishAll(events...)
		e.wait(live)
	}
	gone := func(repo, digest string) feed.Event {
		return feed.Event{Kind: feed.Deleted, Registry: reg, Repository: repo, Digest: digest}
	}

	// An album whose corrected child was pushed again and whose other
	// child was carried over; then the replaced album is deleted.
	step(albumCorrected()...)
	step(gone(album, "sha256:i1"))

	// An album of a found child and a new one described beside it, with
	// the same model; then the found album is deleted.
	found := written("albums/coast", "sha256:k2", "ollama/a", []string{"v1"}, day("2026-01-04"),
		inAlbum("sha256:k2b", photo("sha256:lc", "A harbour with fishing boats.", "harbour")))
	found.Kind = feed.Found
	added := written("albums/coast", "sha256:k3", "ollama/a", []string{"v1"}, day("2026-01-05"),
		inAlbum("sha256:k3a", photo("sha256:ld", "Seagulls on a pier.", "gull")))
	added.Replaces = "sha256:k2"
	step(found, added)
	step(gone("albums/coast", "sha256:k2"))

	// One photo's chain of corrections; the middle manifest is deleted
	// (its description leaves the history of the live index too).
	step(corrections()...)
	step(gone("photos/cats", "sha256:m2"))

	// A model's description corrected by a person; the model's manifest
	// is deleted, and its description leaves the history with it.
	bird := written("photos/birds", "sha256:b1", "ollama/a", []string{"latest"}, day("2026-01-01"), photo("sha256:lbird", "A crow on a fence.", "crow"))
	bird.Replaces = "sha256:b0"
	fixed := written("photos/birds", "sha256:b2", "person", []string{"latest"}, day("2026-01-02"), photo("sha256:lbird", "A jackdaw on a fence.", "jackdaw"))
	fixed.Replaces = "sha256:b1"
	step(bird, fixed)
	step(gone("photos/birds", "sha256:b1"))

	// Two photos of one manifest: described, corrected (listing both), a
	// partial write-back listing one; the manifests it replaced deleted.
	step(dogsCorrected()...)
	step(gone("photos/dogs", "sha256:m2"), gone("photos/dogs", "sha256:m1"))

	// A photo described in a referrer, then deleted; and one that stays.
	ref := written("photos/ref", "sha256:r1", "ollama/a", []string{"latest"}, day("2026-01-06"), photo("sha256:lr", "A tram in the snow.", "tram"))
	ref.Photos[0].Stored = "referrer sha256:rr"
	stays := written("photos/ref", "sha256:r2", "ollama/a", []string{"v2"}, day("2026-01-07"), photo("sha256:ls", "A bus in the rain.", "bus"))
	stays.Photos[0].Stored = "referrer sha256:rs"
	step(ref, stays)
	step(gone("photos/ref", "sha256:r1"))

	queries := []string{"lighthouse", "kite", "green", "red", "harbour", "gull", "cat", "dog", "rex", "crow", "jackdaw", "tram", "bus",
		"tag:2026", "tag:v1", "tag:latest", "repo:albums/*", "repo:photos/*", "model:ollama/a", "model:person:ann"}
	var pages [][2]string
	for _, d := range []string{"sha256:i1", "sha256:i2", "sha256:c1b", "sha256:la", "sha256:lb"} {
		pages = append(pages, [2]string{album, d})
	}
	for _, d := range []string{"sha256:k2", "sha256:k3", "sha256:lc", "sha256:ld"} {
		pages = append(pages, [2]string{"albums/coast", d})
	}
	for _, d := range []string{"sha256:m1", "sha256:m2", "sha256:m3", "sha256:l1"} {
		pages = append(pages, [2]string{"photos/cats", d})
	}
	for _, d := range []string{"sha256:m1", "sha256:m2", "sha256:m3", "sha256:l1", "sha256:l2"} {
		pages = append(pages, [2]string{"photos/dogs", d})
	}
	for _, d := range []string{"sha256:b1", "sha256:b2", "sha256:lbird"} {
		pages = append(pages, [2]string{"photos/birds", d})
	}
	for _, d := range []string{"sha256:r1", "sha256:r2", "sha256:lr"} {
		pages = append(pages, [2]string{"photos/ref", d})
	}
	repos := []string{album, "albums/coast", "photos/cats", "photos/birds", "photos/dogs", "photos/ref"}
	want := stacktest.ViewIndex(t, live, reg, queries, pages, repos)

	// The running index holds what the steps left: the test compares
	// something.
	require.Len(t, want.Hits["lighthouse"], 1, "the carried child of the deleted album")
	require.Len(t, want.Hits["harbour"], 1, "the found child carried to the album beside the new one")
	require.Len(t, want.Hits["dog"], 1, "the dog on the sofa, carried by the partial write-back")
	require.Empty(t, want.Hits["tram"], "the deleted referrer-mode photo")
	require.Len(t, want.Pages["photos/cats@sha256:l1"], 2, "the deleted middle manifest's description left the history")
	require.Len(t, want.Pages["photos/birds@sha256:lbird"], 1, "the deleted model's manifest took its description out of the history")

	rebuilt, _ := e.open(t.TempDir(), index.Options{})
	e.wait(rebuilt)
	got := stacktest.ViewIndex(t, rebuilt, reg, queries, pages, repos)
	for _, q := range queries {
		require.ElementsMatch(t, want.Hits[q], got.Hits[q], "search %q", q)
	}
	require.Equal(t, want.Pages, got.Pages, "photo pages and their history")
	require.Equal(t, want.Photos, got.Photos, "repository listings")
	require.Equal(t, want.Count, got.Count)
}
