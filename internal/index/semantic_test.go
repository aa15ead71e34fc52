package index_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/modeltest"
)

// fakeEmbedder is a fake model server with its embedding switch.
type fakeEmbedder interface {
	SetEmbedDown(bool)
	EmbeddedTexts() int
	Problems() []string
}

// embedders are the real clients against both fakes.
func embedders(t *testing.T) map[string]struct {
	emb  index.Embedder
	fake fakeEmbedder
} {
	ollama := modeltest.NewOllama("nomic-embed-text:latest")
	t.Cleanup(ollama.Close)
	u, err := url.Parse(ollama.URL)
	require.NoError(t, err)
	oai := modeltest.NewOpenAI("sk-test", "text-embedding-3-small")
	t.Cleanup(oai.Close)
	o, err := embed.NewOpenAI(embed.OpenAIOptions{BaseURL: oai.BaseURL(), APIKey: "sk-test", Model: "text-embedding-3-small"})
	require.NoError(t, err)
	return map[string]struct {
		emb  index.Embedder
		fake fakeEmbedder
	}{
		"ollama": {embed.NewOllama(embed.OllamaOptions{BaseURL: u, Model: "nomic-embed-text"}), ollama},
		"openai": {o, oai},
	}
}

func TestSemanticSearchFindsBySynonym(t *testing.T) {
	for name, p := range embedders(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			kv, err := index.VectorBucket(e.ctx, e.js, 1)
			require.NoError(t, err)
			e.publish(written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-01"), photo("sha256:car", "A red car parked by the road.", "car")))
			e.publish(written("photos/a", "sha256:m2", "ollama/a", nil, day("2026-01-01"), photo("sha256:dog", "A dog asleep on a sofa.", "dog")))
			e.publish(written("photos/b", "sha256:m3", "ollama/a", nil, day("2026-01-01"), photo("sha256:dog2", "Two dogs run on a beach.", "dogs")))
			dir := t.TempDir()
			ix, stop := e.open(dir, index.Options{Embedder: p.emb, Vectors: kv})
			e.wait(ix)
			require.Empty(t, e.search(ix, "automobile repo:photos/b"), "filters hold for vector matches too")
			require.Eventually(t, func() bool { done, _ := ix.Embedded(); return done == 3 }, 20*time.Second, 20*time.Millisecond)

			hits := e.search(ix, "automobile")
			require.NotEmpty(t, hits)
			require.Equal(t, "sha256:car", hits[0].Layer, "found by a word its description does not contain")
			require.Equal(t, []string{"sha256:dog", "sha256:dog2"}, layers(e.search(ix, "puppy")))
			require.Equal(t, []string{"sha256:dog2"}, layers(e.search(ix, "puppy repo:photos/b")))
			require.Equal(t, []string{"sha256:dog2"}, layers(e.search(ix, "puppy -sofa")), "an excluded word holds for vector matches too")
			hits = e.search(ix, "dog")
			require.Equal(t, "sha256:dog", hits[0].Layer, "text and vector ranks fused")
			require.InDelta(t, 2.0/61, hits[0].Score, 1e-9, "first in both rankings")
			require.Empty(t, p.fake.Problems())

			// A restart finds every vector in the bucket: nothing is embedded again.
			embedded := p.fake.EmbeddedTexts()
			stop()
			ix, _ = e.open(dir, index.Options{Embedder: p.emb, Vectors: kv})
			require.Eventually(t, func() bool { done, _ := ix.Embedded(); return done == 3 }, 20*time.Second, 20*time.Millisecond)
			require.Equal(t, "sha256:car", e.search(ix, "automobile")[0].Layer)
			require.Equal(t, embedded+1, p.fake.EmbeddedTexts(), "only the query was embedded")
		})
	}
}

func TestEmbedderDownDoesNotHoldUpIndexing(t *testing.T) {
	p := embedders(t)["ollama"]
	e := newEnv(t)
	kv, err := index.VectorBucket(e.ctx, e.js, 1)
	require.NoError(t, err)
	p.fake.SetEmbedDown(true)
	e.publish(written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-01"), photo("sha256:car", "A red car parked by the road.")))
	ix, _ := e.open(t.TempDir(), index.Options{Embedder: p.emb, Vectors: kv})
	e.wait(ix)

	require.Equal(t, []string{"sha256:car"}, layers(e.search(ix, "car")), "searchable by text while the embedder is down")
	require.Empty(t, e.search(ix, "automobile"))
	done, waiting := ix.Embedded()
	require.Zero(t, done)
	require.Equal(t, 1, waiting)
	require.Eventually(t, func() bool { return strings.Contains(e.log.String(), "their vectors wait for the embedding model") },
		10*time.Second, 10*time.Millisecond, "the log says why search by meaning misses the photo: %s", e.log)

	p.fake.SetEmbedDown(false)
	require.Eventually(t, func() bool { done, _ := ix.Embedded(); return done == 1 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"sha256:car"}, layers(e.search(ix, "automobile")), "embedded once the model is back")
}
