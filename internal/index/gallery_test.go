package index_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
)

// TestTilesShowEveryPhotoWithItsState: the gallery's list holds every
// photo newest first from its announcement on (queued), then failed with
// its reason, or described; a refusal is a photo "not an image"; an
// announcement that comes after the description changes nothing; the list
// is the same after a restart and in an index rebuilt from the stream.
func TestTilesShowEveryPhotoWithItsState(t *testing.T) {
	e := newEnv(t)
	queued := func(repo, digest, at string) feed.Event {
		return feed.Event{Kind: feed.Queued, Registry: reg, Repository: repo, Digest: digest, Tags: []string{"latest"}, At: day(at)}
	}
	e.publish(queued("photos/a", "sha256:m-lake", "2026-04-01"))
	e.publish(queued("photos/a", "sha256:m-fork", "2026-04-02"))
	e.publish(queued("photos/b", "sha256:m-dune", "2026-04-03"))
	e.publish(queued("photos/b", "sha256:m-text", "2026-04-04"))
	dir := t.TempDir()
	ix, stop := e.open(dir, index.Options{})
	e.wait(ix)

	states := func(ix *index.Index, registry, repo string) []string {
		t.Helper()
		tiles, total, err := ix.Tiles(e.ctx, registry, repo, 0, 10)
		require.NoError(t, err)
		require.Len(t, tiles, total)
		var out []string
		for _, tl := range tiles {
			out = append(out, tl.Digest+" "+string(tl.State)+" "+tl.Reason)
		}
		return out
	}
	require.Equal(t, []string{"sha256:m-text queued ", "sha256:m-dune queued ", "sha256:m-fork queued ", "sha256:m-lake queued "}, states(ix, "", ""))

	e.publish(written("photos/a", "sha256:m-lake", "ollama/qwen2.5vl:3b", []string{"latest"}, day("2026-04-05"),
		photo("sha256:l-lake", "A lake at dawn.", "lake")))
	e.publish(feed.Event{Kind: feed.Failed, Registry: reg, Repository: "photos/a", Digest: "sha256:m-fork", At: day("2026-04-02"), Reason: "model said no"})
	e.publish(feed.Event{Kind: feed.Refused, Registry: reg, Repository: "photos/b", Digest: "sha256:m-text", At: day("2026-04-07"), Reason: "not an image: text"})
	e.publish(queued("photos/a", "sha256:m-lake", "2026-04-08")) // late: described already
	e.wait(ix)
	// A failure keeps its place (when it was pushed).
	want := []string{"sha256:m-text refused not an image: text", "sha256:m-lake described ", "sha256:m-dune queued ", "sha256:m-fork failed model said no"}
	require.Equal(t, want, states(ix, "", ""))
	require.Equal(t, []string{want[1], want[3]}, states(ix, reg, "photos/a"))
	require.Equal(t, []string{want[0], want[2]}, states(ix, reg, "photos/b"))
	tl, ok, err := ix.Waiting(e.ctx, reg, "photos/a", "sha256:m-fork")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, index.StateFailed, tl.State)
	repos, err := ix.Repositories(e.ctx)
	require.NoError(t, err)
	for _, r := range repos {
		if r.Repository == "photos/a" {
			require.Equal(t, [3]int{1, 0, 1}, [3]int{r.Photos, r.Queued, r.Failed})
		}
	}

	stop()
	ix, _ = e.open(dir, index.Options{})
	e.wait(ix)
	require.Equal(t, want, states(ix, "", ""), "after a restart")
	rebuilt, _ := e.open(t.TempDir(), index.Options{})
	e.wait(rebuilt)
	require.Equal(t, want, states(rebuilt, "", ""), "rebuilt from the stream")

	// Queued again after failing (a dead letter retried): waiting again,
	// in its place.
	e.publish(queued("photos/a", "sha256:m-fork", "2026-04-08"))
	e.wait(ix)
	require.Equal(t, []string{want[1], "sha256:m-fork queued "}, states(ix, reg, "photos/a"))
	require.Equal(t, "sha256:m-fork queued ", states(ix, "", "")[3], "it keeps its place")

	// Described after failing: the failure is gone.
	e.publish(written("photos/a", "sha256:m-fork", "ollama/qwen2.5vl:3b", nil, day("2026-04-09"),
		photo("sha256:l-fork", "A forklift.", "forklift")))
	e.wait(ix)
	require.Equal(t, "sha256:m-fork described ", states(ix, reg, "photos/a")[0])
}
