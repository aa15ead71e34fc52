package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWebServesProbes: `regscribe web` answers the probes of its
// Deployment (deploy/helm) on its own address, without the gallery's token,
// while the gallery still asks for it.
func TestWebServesProbes(t *testing.T) {
	t.Parallel()
	natsAddr := freeAddr(t)
	regAddr := freeAddr(t)
	up := startUp(t, upEnv(t, "REGSCRIBE_NATS_LISTEN="+natsAddr, "REGSCRIBE_REGISTRY_ADDR="+regAddr, "REGSCRIBE_WEB_LISTEN=off")...)
	up.WaitLog(t, "regscribe is up")

	webAddr := freeAddr(t)
	cmd := exec.Command(binary, "web")
	cmd.Env = append(os.Environ(),
		"REGSCRIBE_NATS_URL=nats://"+natsAddr,
		"REGSCRIBE_REGISTRIES=http://"+regAddr,
		"REGSCRIBE_WEB_LISTEN="+webAddr,
		"REGSCRIBE_WEB_TOKEN=s3cret-web-token",
		"REGSCRIBE_DATA_DIR="+t.TempDir(),
	)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	get := func(path string) (int, []byte) {
		resp, err := http.Get("http://" + webAddr + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	require.Eventually(t, func() bool { code, _ := get("/healthz"); return code == http.StatusOK },
		30*time.Second, 50*time.Millisecond, "/healthz answers 200")
	code, body := get("/readyz")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var checks map[string]string
	require.NoError(t, json.Unmarshal(body, &checks))
	require.Equal(t, "ok", checks["nats"])
	code, _ = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	code, _ = get("/")
	require.Equal(t, http.StatusUnauthorized, code, "the gallery still wants its token")
}
