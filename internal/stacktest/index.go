package stacktest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/index"
)

// FollowIndex opens a search index (in a temporary directory unless
// opts.Dir is set, logging to [Logger] unless opts.Log is set) that follows
// the description stream of js until the test ends or the returned stop is
// called.
func FollowIndex(t testing.TB, js jetstream.JetStream, opts index.Options) (*index.Index, func()) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Log == nil {
		opts.Log = Logger(t)
	}
	ix, err := index.Open(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ix.Follow(ctx, js) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			require.NoError(t, ix.Close())
		})
	}
	t.Cleanup(stop)
	return ix, stop
}

// IndexView is what an index shows, as lines ([EntryLine]): the hits of
// each query, every photo page asked for (current descriptions and
// history), each repository's photos, and how many entries it holds. Two
// indexes that show the same are equal views (a rebuilt index and the
// running one).
type IndexView struct {
	Hits   map[string][]string
	Pages  map[string][]string
	Photos map[string][]string
	Count  uint64
}

// EntryLine is an entry as a line: layer, describer, description, where,
// and its tags or what replaced it.
func EntryLine(e index.Entry) string {
	s := fmt.Sprintf("%s %s: %s @%s/%s/%s/%s", e.Layer, e.Model, e.Description, e.Registry, e.Repository, e.Digest, e.Manifest)
	if e.Superseded.IsZero() {
		return s + " [" + strings.Join(e.Tags, " ") + "]"
	}
	return s + " (replaced by " + e.SupersededBy + " at " + e.Superseded.String() + ")"
}

// ViewIndex reads what ix shows for the queries (up to 10,000 hits each),
// the photo pages (repository, digest) and the repositories' photos, all
// of registry reg.
func ViewIndex(t testing.TB, ix *index.Index, reg string, queries []string, pages [][2]string, repos []string) IndexView {
	t.Helper()
	ctx := context.Background()
	v := IndexView{Hits: map[string][]string{}, Pages: map[string][]string{}, Photos: map[string][]string{}}
	var err error
	v.Count, err = ix.Count()
	require.NoError(t, err)
	for _, q := range queries {
		query, err := index.ParseQuery(q)
		require.NoError(t, err, "query %q", q)
		query.Limit = 10_000
		hits, total, err := ix.Search(ctx, query)
		require.NoError(t, err, "search %q", q)
		require.GreaterOrEqual(t, total, len(hits))
		lines := []string{}
		for _, h := range hits {
			lines = append(lines, EntryLine(h.Entry))
		}
		v.Hits[q] = lines
	}
	for _, p := range pages {
		entries, err := ix.Photo(ctx, reg, p[0], p[1])
		require.NoError(t, err)
		lines := []string{}
		for _, en := range entries {
			lines = append(lines, EntryLine(en))
		}
		v.Pages[p[0]+"@"+p[1]] = lines
	}
	for _, r := range repos {
		entries, _, err := ix.Photos(ctx, reg, r, 0, 10_000)
		require.NoError(t, err)
		lines := []string{}
		for _, en := range entries {
			lines = append(lines, EntryLine(en))
		}
		v.Photos[r] = lines
	}
	return v
}
