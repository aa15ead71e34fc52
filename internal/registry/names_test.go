package registry_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/registry"
)

// TestNames: every spelling and alias of a configured registry is its
// configured name; other hosts keep theirs, lower-cased.
func TestNames(t *testing.T) {
	t.Parallel()
	names, err := registry.NewNames([]registry.Endpoint{
		{Host: "localhost:5000", PlainHTTP: true},
		{Host: "127.0.0.1:5000"}, // the same registry: the first is kept
		{Host: "Registry.Example.com", Aliases: []string{"registry-internal:5000", "REGISTRY.example.com:443"}},
		{Host: "127.0.0.1:6000"},
	})
	require.NoError(t, err)
	for _, c := range []struct{ in, want string }{
		{"localhost:5000", "localhost:5000"},
		{"127.0.0.1:5000", "localhost:5000"},
		{"[::1]:5000", "localhost:5000"},
		{"LOCALHOST:5000", "localhost:5000"},
		{"localhost:6000", "127.0.0.1:6000"},
		{"localhost:7000", "localhost:7000"}, // not configured: as given
		{"registry.example.com", "registry.example.com"},
		{"REGISTRY.EXAMPLE.COM", "registry.example.com"},
		{"registry-internal:5000", "registry.example.com"},
		{"registry.example.com:443", "registry.example.com"},
		{"Other.example.com", "other.example.com"},
	} {
		require.Equal(t, c.want, names.Canonical(c.in), c.in)
	}

	_, err = registry.NewNames([]registry.Endpoint{{Host: "a.example.com", Aliases: []string{"b.example.com"}}, {Host: "b.example.com"}})
	require.ErrorContains(t, err, "alias b.example.com of a.example.com is already the name of b.example.com")
}

// TestRepositoryByAlias: a job naming a registry by an alias reaches the
// registry by its configured name, and the handle carries that name.
func TestRepositoryByAlias(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true, Aliases: []string{"registry-internal:5000"}}},
		registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	require.True(t, c.Allowed("registry-internal:5000"))
	require.False(t, c.Allowed("registry-internal:5001"))
	repo, err := c.Repository("registry-internal:5000", "photos/x")
	require.NoError(t, err)
	require.Equal(t, host, repo.Reference.Registry)
	require.NoError(t, c.Ping(context.Background()))
	_, err = c.Resolve(context.Background(), repo, "latest")
	require.ErrorContains(t, err, host+"/photos/x", "the request went to the configured name")
}
