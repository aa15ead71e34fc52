package embedded_test

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
)

// The Distribution configs shipped in deploy/ must parse and notify regscribe.
func TestDeployedDistributionConfigs(t *testing.T) {
	t.Parallel()
	for file, url := range map[string]string{
		"../../deploy/distribution/config.yml": "http://127.0.0.1:8088/v1/events",
		"../../deploy/compose/registry.yml":    "http://notifier:8088/v1/events",
	} {
		f, err := os.Open(file)
		require.NoError(t, err)
		cfg, err := configuration.Parse(f)
		f.Close()
		require.NoError(t, err, file)
		require.Len(t, cfg.Notifications.Endpoints, 1)
		ep := cfg.Notifications.Endpoints[0]
		require.Equal(t, url, ep.URL)
		require.Equal(t, []string{"Bearer change-me"}, ep.Headers["Authorization"])
		require.Contains(t, ep.IgnoredMediaTypes, "application/octet-stream")
		require.ElementsMatch(t, []string{"pull", "mount"}, ep.Ignore.Actions)
		require.Equal(t, true, cfg.Storage["delete"]["enabled"], "%s: delete must be enabled for referrer fallback indexes", file)
	}
}

func TestRegistryAndNATSStartAndStop(t *testing.T) {
	t.Parallel()
	reg, err := embedded.StartRegistry(context.Background(), embedded.RegistryOptions{RootDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	resp, err := http.Get("http://" + reg.Addr() + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, reg.Stop(ctx))

	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	require.True(t, ns.JetStreamEnabled())
	ns.Stop()

	_, err = embedded.StartNATS(embedded.NATSOptions{Listen: "127.0.0.1:0"})
	require.ErrorContains(t, err, "StoreDir")
	_, err = embedded.StartRegistry(context.Background(), embedded.RegistryOptions{Listen: "256.0.0.1:0"})
	require.Error(t, err)
}
