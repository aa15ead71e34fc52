package memo_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/fault"
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
	js := startJetStream(t)
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

// unreadable is a bucket whose Get fails (a timeout, a leader election)
// while armed.
type unreadable struct {
	jetstream.KeyValue
	fail bool
}

func (u *unreadable) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if u.fail {
		return nil, context.DeadlineExceeded
	}
	return u.KeyValue.Get(ctx, key)
}

// When the key exists but the winner cannot be read, Remember must not
// overwrite it: the job retries and then reads the winner.
func TestRememberNeverOverwritesTheWinner(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx := context.Background()
	first, err := memo.Open(ctx, js, "test-winner", 1)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, "test-winner")
	require.NoError(t, err)
	flaky := &unreadable{KeyValue: kv}
	second := memo.NewStoreOn(flaky)

	k := memo.Key{Blob: "sha256:bb", Model: "ollama/m", Prompt: "sha256:pp"}
	_, err = first.Remember(ctx, k, vision.Description{Text: "Winner."})
	require.NoError(t, err)

	flaky.fail = true
	_, err = second.Remember(ctx, k, vision.Description{Text: "Loser."})
	require.Error(t, err)
	require.True(t, fault.Is(err, fault.KindRetry), "%v", err)
	got, ok, err := first.Get(ctx, k)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "Winner.", got.Text, "the first description is kept")

	// The retry reads the winner.
	flaky.fail = false
	got, err = second.Remember(ctx, k, vision.Description{Text: "Loser."})
	require.NoError(t, err)
	require.Equal(t, "Winner.", got.Text)
}

// A stored record that does not decode is replaced, but only the one read.
func TestRememberReplacesAnUnreadableRecord(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx := context.Background()
	store, err := memo.Open(ctx, js, "test-garbage", 1)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, "test-garbage")
	require.NoError(t, err)
	k := memo.Key{Blob: "sha256:cc", Model: "ollama/m", Prompt: "sha256:pp"}
	_, err = kv.Put(ctx, k.String(), []byte("not json"))
	require.NoError(t, err)
	got, err := store.Remember(ctx, k, vision.Description{Text: "Fresh."})
	require.NoError(t, err)
	require.Equal(t, "Fresh.", got.Text)
	got, ok, err := store.Get(ctx, k)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "Fresh.", got.Text)
}

// startJetStream starts an in-process NATS server with JetStream.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "off"})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}
