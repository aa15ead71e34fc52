package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestOneNamePerRegistryAtTheEdges: a registry configured with an
// upper-case host and an alias, and named otherwise by the notifier's
// settings and a sources file, is one name in every job the notifier
// makes, in the reconcile targets, and in what `regscribe reprocess`
// queues; an event naming the alias is the registry's.
func TestOneNamePerRegistryAtTheEdges(t *testing.T) {
	t.Parallel()
	_, js := startQueue(t)
	sources := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(sources, []byte(`sources:
  - name: acr
    format: acr
    registry: REGISTRY-INTERNAL:5000
    auth: {bearer: "acr-s3cret"}
`), 0o600))
	cfg, err := config.Load()
	require.NoError(t, err)
	cfg.Registries = []string{"https://Registry.Example.com:5000"}
	cfg.RegistryAliases = []string{"registry.example.com:5000=Registry-Internal:5000"}
	cfg.NotifyRegistry, cfg.SourcesFile = "REGISTRY-internal:5000", sources
	require.NoError(t, cfg.Validate())
	const name = "registry.example.com:5000"

	endpoints, err := registryEndpoints(cfg)
	require.NoError(t, err)
	require.Len(t, endpoints, 1)
	require.Equal(t, name, endpoints[0].Host, "what reconcile sweeps and workers connect to")

	n, err := newNotifier(context.Background(), cfg, js, "default-s3cret", newOps(), stacktest.Logger(t))
	require.NoError(t, err)
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	post := func(path, token, body string) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	const dgst = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	event := func(id, host string) string {
		return fmt.Sprintf(`{"id":%q,"timestamp":"2026-11-27T20:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":512,"repository":"photos/a","tag":"latest"},"request":{"id":"r1","host":%q,"method":"PUT"}}`, id, dgst, host)
	}
	require.Equal(t, http.StatusOK, post("/v1/events", "default-s3cret", `{"events":[`+event("e1", "localhost:5000")+`]}`))
	require.Equal(t, http.StatusOK, post("/v1/events/acr", "acr-s3cret", event("e2", "registry-internal:5000")), "the alias is the registry")
	require.Equal(t, http.StatusOK, post("/v1/events/acr", "acr-s3cret", event("e3", "Registry.Example.com:5000")), "so is its configured name")
	require.Equal(t, http.StatusForbidden, post("/v1/events/acr", "acr-s3cret", event("e4", "evil.example")))
	jobs := stacktest.Jobs(t, js)
	require.Len(t, jobs, 3)
	for _, j := range jobs {
		require.Equal(t, name, j.Registry, "job of %s", j.Event)
	}

	// The command line names it by its alias, in capitals.
	tg, err := parseTarget(cfg, "REGISTRY-INTERNAL:5000/photos/a", false)
	require.NoError(t, err)
	require.Equal(t, name, tg.client.Canonical(tg.ref.Registry))

	cfg.RegistryAliases = []string{"elsewhere.example.com=registry-internal:5000"}
	_, err = registryEndpoints(cfg)
	require.ErrorContains(t, err, "REGSCRIBE_REGISTRY_ALIASES: elsewhere.example.com is not in REGSCRIBE_REGISTRIES")
}
