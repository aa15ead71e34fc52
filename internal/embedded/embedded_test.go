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

// The Distribution config shipped in deploy/ must parse and notify regscribe.
func TestDeployedDistributionConfig(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../deploy/distribution/config.yml")
	require.NoError(t, err)
	defer f.Close()
	cfg, err := configuration.Parse(f)
	require.NoError(t, err)
	require.Len(t, cfg.Notifications.Endpoints, 1)
	ep := cfg.Notifications.Endpoints[0]
	require.Equal(t, "http://127.0.0.1:8088/v1/events", ep.URL)
	require.Equal(t, []string{"Bearer change-me"}, ep.Headers["Authorization"])
	require.Contains(t, ep.IgnoredMediaTypes, "application/octet-stream")
	require.ElementsMatch(t, []string{"pull", "mount"}, ep.Ignore.Actions)
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
