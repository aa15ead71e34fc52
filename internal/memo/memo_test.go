package memo_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/vision"
)

type memory interface {
	Get(context.Context, memo.Key) (vision.Description, bool, error)
	Remember(context.Context, memo.Key, vision.Description) (vision.Description, error)
	Replace(context.Context, memo.Key, vision.Description) error
}

// Both memories: the JetStream bucket workers share, and the in-process one.
func TestFirstDescriptionWins(t *testing.T) {
	t.Parallel()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "off"})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	store, err := memo.Open(context.Background(), js, "test-descriptions", 1)
	require.NoError(t, err)

	for name, m := range map[string]memory{"jetstream": store, "local": memo.NewLocal()} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			k := memo.Key{Blob: "sha256:aa", Model: "ollama/m", Prompt: "sha256:pp"}
			_, ok, err := m.Get(ctx, k)
			require.NoError(t, err)
			require.False(t, ok)

			first := vision.Description{Text: "First.", Model: "ollama/m", Created: time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)}
			second := vision.Description{Text: "Second.", Model: "ollama/m", Created: first.Created.Add(time.Second)}
			got, err := m.Remember(ctx, k, first)
			require.NoError(t, err)
			require.Equal(t, first.Text, got.Text)
			got, err = m.Remember(ctx, k, second)
			require.NoError(t, err)
			require.Equal(t, first.Text, got.Text, "the first description wins")
			require.True(t, got.Created.Equal(first.Created))

			require.NoError(t, m.Replace(ctx, k, second))
			got, ok, err = m.Get(ctx, k)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, second.Text, got.Text)

			other := k
			other.Prompt = "sha256:other"
			_, ok, err = m.Get(ctx, other)
			require.NoError(t, err)
			require.False(t, ok, "another prompt is another description")
		})
	}
}
