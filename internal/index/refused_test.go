package index_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
)

// TestRefusalsAreCountedNotSearched: a refused manifest is counted in its
// repository and listed with its reason, never found by search (its reason
// names words a search would match), kept across a restart and in an index
// rebuilt from the stream, and removed by a deletion of the manifest.
func TestRefusalsAreCountedNotSearched(t *testing.T) {
	e := newEnv(t)
	refused := func(repo, digest, tag string) feed.Event {
		return feed.Event{Kind: feed.Refused, Registry: reg, Repository: repo, Digest: digest, Tags: []string{tag}, At: day("2026-04-01"),
			Reason: `not an image: "dune.jpg" (application/vnd.oci.image.layer.v1.tar) holds text (text/plain; charset=utf-8), not a photo regscribe can describe`}
	}
	e.publish(written("photos/misc", "sha256:m-dune", "ollama/qwen2.5vl:3b", []string{"dune"}, day("2026-03-01"),
		photo("sha256:l-dune", "Sand dunes under a pale sky.", "dunes")))
	e.publish(refused("photos/misc", "sha256:m-notes", "notes"))
	e.publish(refused("texts/only", "sha256:m-readme", "v1"))
	dir := t.TempDir()
	ix, stop := e.open(dir, index.Options{})
	e.wait(ix)

	check := func(ix *index.Index, want map[string][2]int) {
		t.Helper()
		repos, err := ix.Repositories(e.ctx)
		require.NoError(t, err)
		got := map[string][2]int{}
		for _, r := range repos {
			got[r.Repository] = [2]int{r.Photos, r.Refused}
		}
		require.Equal(t, want, got, "photos and refusals per repository")
		require.Equal(t, []string{"sha256:l-dune"}, layers(e.search(ix, "dune")), "a refusal is never a hit")
		require.Empty(t, e.search(ix, "text"))
	}
	check(ix, map[string][2]int{"photos/misc": {1, 1}, "texts/only": {0, 1}})
	list, total, err := ix.Refusals(e.ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 2, total)
	require.Equal(t, "sha256:m-notes", list[0].Digest)
	require.Equal(t, []string{"notes"}, list[0].Tags)
	require.Contains(t, list[0].Reason, `"dune.jpg"`)

	// A restart reads them back; an index built from the stream has them too.
	stop()
	ix, _ = e.open(dir, index.Options{})
	e.wait(ix)
	check(ix, map[string][2]int{"photos/misc": {1, 1}, "texts/only": {0, 1}})
	rebuilt, _ := e.open(t.TempDir(), index.Options{})
	e.wait(rebuilt)
	check(rebuilt, map[string][2]int{"photos/misc": {1, 1}, "texts/only": {0, 1}})

	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: "texts/only", Digest: "sha256:m-readme"})
	e.wait(ix)
	check(ix, map[string][2]int{"photos/misc": {1, 1}})
	_, total, err = ix.Refusals(e.ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, total)
}

// TestDescriptionRemovesTheRefusal: a refused manifest described after all
// is no longer counted, whether the description is of the manifest itself
// (referrer mode) or of a re-pushed copy that replaces it (annotation
// mode); so in an index rebuilt from the stream, which purged the refusals.
func TestDescriptionRemovesTheRefusal(t *testing.T) {
	e := newEnv(t)
	for _, d := range []string{"sha256:m-moon", "sha256:m-sun", "sha256:m-notes"} {
		e.publish(feed.Event{Kind: feed.Refused, Registry: reg, Repository: "photos/sky", Digest: d, Tags: []string{d[9:]}, At: day("2026-04-01"),
			Reason: `not an image: "moon.jxl" (application/vnd.oci.image.layer.v1.tar) holds JPEG XL, which regscribe cannot describe`})
	}
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)
	_, total, err := ix.Refusals(e.ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 3, total)

	e.publish(written("photos/sky", "sha256:m-moon", "ollama/qwen2.5vl:3b", []string{"moon"}, day("2026-05-01"), photo("sha256:l-moon", "The full moon.")))
	annotated := written("photos/sky", "sha256:m-sun2", "ollama/qwen2.5vl:3b", []string{"sun"}, day("2026-05-01"), photo("sha256:l-sun", "The sun at noon."))
	annotated.Replaces = "sha256:m-sun"
	e.publish(annotated)
	for _, ix := range []*index.Index{ix, func() *index.Index { rebuilt, _ := e.open(t.TempDir(), index.Options{}); return rebuilt }()} {
		e.wait(ix)
		list, total, err := ix.Refusals(e.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, total)
		require.Equal(t, "sha256:m-notes", list[0].Digest)
		repos, err := ix.Repositories(e.ctx)
		require.NoError(t, err)
		require.Len(t, repos, 1)
		require.Equal(t, [2]int{2, 1}, [2]int{repos[0].Photos, repos[0].Refused})
	}
}
