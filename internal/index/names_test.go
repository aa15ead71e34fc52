package index_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/registry"
)

// TestOneRegistryUnderTwoNames: the notifier's job wrote a photo's
// description under 127.0.0.1:5000 and a reprocess of localhost:5000 (the
// same registry) replaced it with a re-pushed manifest. An index that
// keyed on the exact name kept both, one pointing at the manifest the tag
// left; opened with the registry's names it is rebuilt into one entry
// under the configured name, and later events under any name join it.
func TestOneRegistryUnderTwoNames(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	first := written("photos/landscapes", "sha256:m1", "ollama/a", []string{"latest"}, day("2026-01-01"), photo("sha256:l1", "A lake at dawn."))
	first.Registry = "127.0.0.1:5000"
	again := written("photos/landscapes", "sha256:m2", "ollama/a", nil, day("2026-01-02"), photo("sha256:l1", "A calm lake at dawn."))
	again.Registry, again.Replaces = "localhost:5000", "sha256:m1"
	e.publish(first)
	e.publish(again)

	// As indexes were: two registries, the photo twice.
	ix, stop := e.open(dir, index.Options{})
	e.wait(ix)
	require.Len(t, e.search(ix, "lake"), 2, "the index before names: one entry per spelling")
	stop()

	names, err := registry.NewNames([]registry.Endpoint{{Host: "localhost:5000", PlainHTTP: true}})
	require.NoError(t, err)
	ix, _ = e.open(dir, index.Options{Registry: names.Canonical})
	e.wait(ix)
	hits := e.search(ix, "lake")
	require.Len(t, hits, 1, "one registry, one entry")
	require.Equal(t, "localhost:5000", hits[0].Registry)
	require.Equal(t, "sha256:m2", hits[0].Digest, "the manifest the tag names")
	require.Equal(t, []string{"latest"}, hits[0].Tags)
	repos, err := ix.Repositories(e.ctx)
	require.NoError(t, err)
	require.Len(t, repos, 1)
	require.Equal(t, "localhost:5000", repos[0].Registry)
	history, err := ix.Photo(e.ctx, "localhost:5000", "photos/landscapes", "sha256:l1")
	require.NoError(t, err)
	require.Len(t, history, 2, "the replaced description is the photo's history")
	require.Contains(t, e.log.String(), "rebuilding the index from the description stream")

	// Events under another name of the registry join its entries.
	later := written("photos/landscapes", "sha256:m3", "ollama/a", []string{"v2"}, day("2026-01-03"), photo("sha256:l3", "A lake in winter."))
	later.Registry = "[::1]:5000"
	e.publish(later)
	e.wait(ix)
	hits = e.search(ix, "lake")
	require.Len(t, hits, 2)
	for _, h := range hits {
		require.Equal(t, "localhost:5000", h.Registry)
	}
	repos, err = ix.Repositories(e.ctx)
	require.NoError(t, err)
	require.Len(t, repos, 1)
}
