package web_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// startCatalog opens a search index in a temporary directory that follows
// the description stream on js until the test ends.
func startCatalog(t testing.TB, js jetstream.JetStream, names *registry.Names) *index.Index {
	t.Helper()
	ix, err := index.Open(index.Options{Dir: t.TempDir(), Log: stacktest.Logger(t), Registry: names.Canonical})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ix.Follow(ctx, js)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		require.NoError(t, ix.Close())
	})
	return ix
}
