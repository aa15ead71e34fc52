package index_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/index"
)

// TestSimilar: the photos whose description vectors are nearest to a
// photo's shown description, best first, one entry per photo, the photo
// itself left out; nothing without an embedding model.
func TestSimilar(t *testing.T) {
	for name, p := range embedders(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.publish(written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-01"), photo("sha256:dog", "A dog asleep on a sofa.", "dog")))
			// The same photo described by another model too: one entry.
			e.publish(written("photos/a", "sha256:m1", "openai/b", nil, day("2026-01-02"), photo("sha256:dog", "A puppy sleeping on a couch.", "dog")))
			e.publish(written("photos/a", "sha256:m2", "ollama/a", nil, day("2026-01-01"), photo("sha256:dogs", "Two dogs asleep on a sofa by the window.", "dogs")))
			e.publish(written("photos/b", "sha256:m3", "ollama/a", nil, day("2026-01-01"), photo("sha256:beach", "Two dogs run on a beach.", "dogs")))
			e.publish(written("photos/b", "sha256:m4", "ollama/a", nil, day("2026-01-01"), photo("sha256:car", "A red car parked by the road.", "car")))

			plain, _ := e.open(t.TempDir(), index.Options{})
			e.wait(plain)
			require.False(t, plain.Semantic())
			hits, err := plain.Similar(e.ctx, reg, "photos/a", "sha256:dog", 10)
			require.NoError(t, err)
			require.Empty(t, hits, "no embedding model, no neighbours")

			ix, _ := e.open(t.TempDir(), index.Options{Embedder: p.emb})
			e.wait(ix)
			require.True(t, ix.Semantic())
			require.Eventually(t, func() bool { done, waiting := ix.Embedded(); return done == 5 && waiting == 0 }, 20*time.Second, 20*time.Millisecond)
			hits, err = ix.Similar(e.ctx, reg, "photos/a", "sha256:dog", 10)
			require.NoError(t, err)
			require.Equal(t, []string{"sha256:dogs", "sha256:beach"}, layers(hits), "the nearest first; not itself, not the car")
			hits, err = ix.Similar(e.ctx, reg, "photos/a", "sha256:dog", 1)
			require.NoError(t, err)
			require.Equal(t, []string{"sha256:dogs"}, layers(hits))
			hits, err = ix.Similar(e.ctx, reg, "photos/a", "sha256:unknown", 10)
			require.NoError(t, err)
			require.Empty(t, hits)
		})
	}
}
