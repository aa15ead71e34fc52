package index_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
)

// corrections are one photo's annotation-mode chain: a model's
// description (sha256:m1, made from the pushed sha256:m0), a person's
// correction of it (m2), another model's description (m3), each a
// re-pushed manifest replacing the one before.
func corrections() []feed.Event {
	events := []feed.Event{
		written("photos/cats", "sha256:m1", "ollama/a", []string{"latest"}, day("2026-01-01"), photo("sha256:l1", "An orange dog on a wall.", "dog")),
		written("photos/cats", "sha256:m2", "person", []string{"latest"}, day("2026-01-02"), photo("sha256:l1", "A ginger cat asleep on a garden wall.", "cat")),
		written("photos/cats", "sha256:m3", "openai/b", []string{"latest"}, day("2026-01-03"), photo("sha256:l1", "A ginger cat dozing in the sun.", "cat")),
	}
	for i, r := range []string{"sha256:m0", "sha256:m1", "sha256:m2"} {
		events[i].Replaces = r
		events[i].Version = feed.Version
	}
	return events
}

// timeline is a photo page's descriptions as lines: describer,
// description, and what replaced it when.
func timeline(t *testing.T, ix *index.Index, digest string) []string {
	t.Helper()
	entries, err := ix.Photo(t.Context(), reg, "photos/cats", digest)
	require.NoError(t, err)
	out := []string{}
	for _, e := range entries {
		line := e.Model + ": " + e.Description
		if !e.Superseded.IsZero() {
			line += " (replaced by " + e.SupersededBy + " on " + e.Superseded.Format(time.DateOnly) + ")"
		}
		require.Equal(t, e.Superseded.IsZero(), e.SupersededBy == "", "a superseded entry says by what")
		out = append(out, line)
	}
	return out
}

var wantTimeline = []string{
	"openai/b: A ginger cat dozing in the sun.",
	"person: A ginger cat asleep on a garden wall. (replaced by sha256:m3 on 2026-01-03)",
	"ollama/a: An orange dog on a wall. (replaced by sha256:m2 on 2026-01-02)",
}

func TestHistoryKeepsEveryDescriptionOutOfSearch(t *testing.T) {
	p := embedders(t)["ollama"]
	e := newEnv(t)
	kv, err := index.VectorBucket(e.ctx, e.js, 1)
	require.NoError(t, err)
	for _, ev := range corrections() {
		e.publish(ev)
	}
	ix, _ := e.open(t.TempDir(), index.Options{Embedder: p.emb, Vectors: kv})
	e.wait(ix)

	// The photo page: the current description, then every one before it,
	// through the whole chain, by the layer or by the current manifest.
	require.Equal(t, wantTimeline, timeline(t, ix, "sha256:l1"))
	require.Equal(t, wantTimeline, timeline(t, ix, "sha256:m3"))
	// An old manifest's page shows what it had, and what came before it.
	require.Equal(t, wantTimeline[1:], timeline(t, ix, "sha256:m2"))

	// Search, browsing and counts know the current description only.
	require.Equal(t, []string{"sha256:l1"}, layers(e.search(ix, "cat")))
	require.Equal(t, "sha256:m3", e.search(ix, "cat")[0].Digest)
	require.Empty(t, e.search(ix, "dog"), "the replaced words are not found")
	require.Empty(t, e.search(ix, "garden"))
	require.Empty(t, e.search(ix, "model:person"), "a listing without words leaves history out")
	require.Len(t, e.search(ix, "tag:latest"), 1)
	shown, total, err := ix.Photos(e.ctx, reg, "photos/cats", 0, 10)
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Equal(t, "openai/b", shown[0].Model)
	require.True(t, shown[0].Superseded.IsZero())
	repos, err := ix.Repositories(e.ctx)
	require.NoError(t, err)
	require.Len(t, repos, 1)
	require.Equal(t, 1, repos[0].Photos)
	n, err := ix.Count()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// History is never embedded.
	require.Eventually(t, func() bool { done, waiting := ix.Embedded(); return done == 1 && waiting == 0 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"sha256:l1"}, layers(e.search(ix, "kitten")))
	require.Empty(t, e.search(ix, "puppy"), "the replaced description has no vector")
	require.Empty(t, p.fake.Problems())
}

func TestHistoryIsIdempotentAndSurvivesRestartAndRebuild(t *testing.T) {
	e := newEnv(t)
	for _, ev := range corrections() {
		e.publish(ev)
	}
	dir := t.TempDir()
	ix, stop := e.open(dir, index.Options{})
	e.wait(ix)
	require.Equal(t, wantTimeline, timeline(t, ix, "sha256:l1"))

	// Every event applied again, in order and out of it, adds nothing and
	// brings no replaced description back into search.
	events := corrections()
	for _, ev := range append(events, events[1], events[0]) {
		require.NoError(t, ix.Apply(e.ctx, ev))
	}
	require.Equal(t, wantTimeline, timeline(t, ix, "sha256:l1"))
	require.Empty(t, e.search(ix, "dog"))
	n, err := ix.Count()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// The history is kept in the index directory.
	stop()
	ix, _ = e.open(dir, index.Options{})
	e.wait(ix)
	require.Equal(t, wantTimeline, timeline(t, ix, "sha256:l1"))
	require.Empty(t, e.search(ix, "dog"))

	// Rebuilt from the stream, which holds each manifest's event.
	rebuilt, _ := e.open(t.TempDir(), index.Options{})
	e.wait(rebuilt)
	require.Equal(t, wantTimeline, timeline(t, rebuilt, "sha256:l1"))
	require.Empty(t, e.search(rebuilt, "dog"))
}

func TestEventOfSupersededManifestIsHistory(t *testing.T) {
	e := newEnv(t)
	events := corrections()
	// The correction is applied before the model's description it
	// replaced is found (reprocess reads it from the registry later).
	e.publishFoundLate(events[1], events[0])
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)
	require.Equal(t, []string{
		"person: A ginger cat asleep on a garden wall.",
		"ollama/a: An orange dog on a wall. (replaced by sha256:m2 on 2026-01-02)",
	}, timeline(t, ix, "sha256:l1"))
	require.Empty(t, e.search(ix, "dog"))
}

func TestDeletionTakesHistory(t *testing.T) {
	e := newEnv(t)
	for _, ev := range corrections() {
		e.publish(ev)
	}
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)

	// An old manifest deleted: its description leaves the history; the
	// chain through it stays.
	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: "photos/cats", Digest: "sha256:m2"})
	e.wait(ix)
	require.Equal(t, []string{wantTimeline[0], wantTimeline[2]}, timeline(t, ix, "sha256:l1"))

	// The current manifest deleted: the whole history goes with it.
	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: "photos/cats", Digest: "sha256:m3"})
	e.wait(ix)
	require.Empty(t, timeline(t, ix, "sha256:l1"))
	require.Empty(t, timeline(t, ix, "sha256:m1"))
	require.Empty(t, e.search(ix, "cat"))

	// The photo pushed and described again starts a history of its own.
	again := written("photos/cats", "sha256:m5", "ollama/a", []string{"latest"}, day("2026-03-01"), photo("sha256:l1", "A cat on a wall."))
	again.Replaces = "sha256:m1"
	e.publish(again)
	e.wait(ix)
	require.Equal(t, []string{"ollama/a: A cat on a wall."}, timeline(t, ix, "sha256:l1"))
}
