package web_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// startCatalog opens a search index in a temporary directory that follows
// the description stream on js until the test ends.
func startCatalog(t testing.TB, js jetstream.JetStream, names *registry.Names) *index.Index {
	t.Helper()
	ix, _ := stacktest.FollowIndex(t, js, index.Options{Registry: names.Canonical})
	return ix
}
