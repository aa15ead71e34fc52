package embed_test

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/embed"
	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/modeltest"
)

// closedURL is a loopback address nothing listens on.
func closedURL(t *testing.T) *url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return &url.URL{Scheme: "http", Host: addr, User: url.UserPassword("ann", "s3cret")}
}

func TestEmbedAndFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ollama := modeltest.NewOllama("nomic-embed-text:latest")
	defer ollama.Close()
	oai := modeltest.NewOpenAI("sk-test", "text-embedding-3-small")
	defer oai.Close()
	ou, err := url.Parse(ollama.URL)
	require.NoError(t, err)
	newOpenAI := func(base, key, model string) index.Embedder {
		e, err := embed.NewOpenAI(embed.OpenAIOptions{BaseURL: base, APIKey: key, Model: model, Timeout: 5 * time.Second})
		require.NoError(t, err)
		return e
	}
	dead := closedURL(t)

	for name, c := range map[string]struct {
		emb  index.Embedder
		down func(bool)
		kind fault.Kind // of a failing call; -1: it works
	}{
		"ollama":               {embed.NewOllama(embed.OllamaOptions{BaseURL: ou, Model: "nomic-embed-text"}), ollama.SetEmbedDown, -1},
		"openai":               {newOpenAI(oai.BaseURL(), "sk-test", "text-embedding-3-small"), oai.SetEmbedDown, -1},
		"ollama model missing": {embed.NewOllama(embed.OllamaOptions{BaseURL: ou, Model: "mxbai-embed-large"}), nil, fault.KindUnavailable},
		"openai model missing": {newOpenAI(oai.BaseURL(), "sk-test", "nope"), nil, fault.KindPermanent},
		"openai wrong key":     {newOpenAI(oai.BaseURL(), "sk-wrong", "text-embedding-3-small"), nil, fault.KindPermanent},
		"ollama not there":     {embed.NewOllama(embed.OllamaOptions{BaseURL: dead, Model: "nomic-embed-text"}), nil, fault.KindUnavailable},
		"openai not there":     {newOpenAI(dead.String()+"/v1", "", "text-embedding-3-small"), nil, fault.KindUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			vecs, err := c.emb.Embed(ctx, []string{"A red car.", "An automobile, red."})
			if c.kind >= 0 {
				require.Error(t, err)
				require.True(t, fault.Is(err, c.kind), "%v is %v", err, c.kind)
				require.NotContains(t, err.Error(), "s3cret")
				return
			}
			require.NoError(t, err)
			require.Len(t, vecs, 2)
			require.Equal(t, modeltest.EmbedVector("A red car.", modeltest.DefaultEmbedDims), vecs[0])

			c.down(true)
			_, err = c.emb.Embed(ctx, []string{"A red car."})
			c.down(false)
			require.True(t, fault.Is(err, fault.KindRetry), "a model that is down is worth another try: %v", err)
		})
	}
	require.Empty(t, ollama.Problems())
	require.Empty(t, oai.Problems())
}

func TestFromConfig(t *testing.T) {
	e, err := embed.FromConfig(config.Config{Provider: "ollama", OllamaHost: "127.0.0.1:11434"})
	require.NoError(t, err)
	require.Nil(t, e, "no embedding model: text search only")
	e, err = embed.FromConfig(config.Config{Provider: "ollama", OllamaHost: "127.0.0.1:11434", EmbedModel: "nomic-embed-text"})
	require.NoError(t, err)
	require.Equal(t, "ollama/nomic-embed-text", e.Model())
	e, err = embed.FromConfig(config.Config{Provider: "openai", OpenAIBaseURL: "http://127.0.0.1:1/v1", EmbedModel: "text-embedding-3-small"})
	require.NoError(t, err)
	require.Equal(t, "openai/text-embedding-3-small", e.Model())
}
