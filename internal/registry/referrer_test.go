package registry_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/registry"
)

// registries are the two in-process registries: CNCF Distribution has no
// referrers API (oras-go keeps the sha256-<hex> fallback index),
// go-containerregistry's has one.
var registries = []struct {
	name     string
	fallback bool
	start    func(t *testing.T) string // returns http://host:port
}{
	{"distribution", true, func(t *testing.T) string {
		r, err := embedded.StartRegistry(context.Background(), embedded.RegistryOptions{Listen: "127.0.0.1:0"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Stop(context.Background()) })
		return "http://" + r.Addr()
	}},
	{"ggcr-referrers", false, func(t *testing.T) string {
		srv := httptest.NewServer(ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(srv.Close)
		return srv.URL
	}},
}

// proxy puts handler in front of the registry at target and returns the
// proxy's host:port.
func proxy(t *testing.T, target string, handler func(w http.ResponseWriter, r *http.Request, next http.Handler)) string {
	u, err := url.Parse(target)
	require.NoError(t, err)
	next := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(w, r, next) }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// client is a registry client for host as another worker process would
// have: its own oras-go state, and no retrying transport, so that a fault
// injected once reaches the caller.
func client(t *testing.T, host string) (*registry.Client, *remote.Repository) {
	c, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}},
		registry.Options{Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{}})
	require.NoError(t, err)
	repo, err := c.Repository(host, "photos/dunes")
	require.NoError(t, err)
	return c, repo
}

// A referrer whose fallback index update failed is stored but invisible;
// the retry must make it visible rather than take "stored" for "done".
func TestWriteReferrerRepairsAFailedFallbackIndex(t *testing.T) {
	t.Parallel()
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var failed atomic.Int32
			host := proxy(t, reg.start(t), func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-") && failed.Add(1) == 1 {
					http.Error(w, "injected: fallback index update fails once", http.StatusServiceUnavailable)
					return
				}
				next.ServeHTTP(w, r)
			})

			c, repo := client(t, host)
			subject, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.photo", oras.PackManifestOptions{})
			require.NoError(t, err)
			rec := registry.Record{Subject: subject.Digest.String(), Model: "ollama/m", Created: time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC),
				Photos: []registry.PhotoRecord{{Description: "Dunes at dusk."}}}

			first, err := c.WriteReferrer(ctx, repo, subject, rec, nil)
			if reg.fallback {
				require.True(t, fault.Is(err, fault.KindRetry), "the failed index update is retryable: %v", err)
			} else {
				require.NoError(t, err)
				require.Zero(t, failed.Load(), "a registry with the referrers API needs no fallback index")
			}

			// The redelivered job, in another process.
			c2, repo2 := client(t, host)
			second, err := c2.WriteReferrer(ctx, repo2, subject, rec, nil)
			require.NoError(t, err)
			require.Equal(t, !reg.fallback, second.AlreadyThere, "stored but not listed is not already there")
			if !reg.fallback {
				require.Equal(t, first.Descriptor.Digest, second.Descriptor.Digest)
			}

			_, fresh := client(t, host)
			var listed []ocispec.Descriptor
			require.NoError(t, fresh.Referrers(ctx, subject, registry.ArtifactTypeDescription, func(refs []ocispec.Descriptor) error {
				listed = append(listed, refs...)
				return nil
			}))
			require.Len(t, listed, 1)
			require.Equal(t, second.Descriptor.Digest, listed[0].Digest, "the referrer is visible, as `oras discover` would show it")

			third, err := c2.WriteReferrer(ctx, repo2, subject, rec, nil)
			require.NoError(t, err)
			require.True(t, third.AlreadyThere, "once listed, a repeated write pushes nothing")
		})
	}
}
