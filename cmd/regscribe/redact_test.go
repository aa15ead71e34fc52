package main

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/vision"
)

// password is what a model URL carries in TestModelURLPasswordNeverShown.
const password = "hunter2-s3cret"

// A model URL with credentials (OLLAMA_HOST=http://user:pass@host, a proxy
// in OPENAI_BASE_URL) never shows its password: not in the start-up log,
// not in /readyz, not in the errors a model call or a pull returns, not in
// a configuration error. The host is still named, so a person knows where.
func TestModelURLPasswordNeverShown(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, provider string
		// up: a fake serves the URL (without the configured model, so the
		// check fails and names the URL); otherwise nothing listens there.
		up bool
	}{
		{"ollama up", "ollama", true},
		{"ollama down", "ollama", false},
		{"openai up", "openai", true},
		{"openai down", "openai", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load()
			require.NoError(t, err)
			cfg.Provider, cfg.Model, cfg.ModelTimeout = tc.provider, "no-such-model", 5*time.Second
			hostPort := freeAddr(t)
			if tc.up {
				var srv *httptest.Server
				if tc.provider == "ollama" {
					f := modeltest.NewOllama("qwen2.5vl:3b")
					f.Answer = func(modeltest.Call) modeltest.Reply { return modeltest.ServerError("runner crashed") }
					srv = f.Server
				} else {
					f := modeltest.NewOpenAI("sk-test", "gpt-4o-mini")
					srv = f.Server
				}
				t.Cleanup(srv.Close)
				hostPort = srv.Listener.Addr().String()
			}
			withCreds := "http://regscribe:" + password + "@" + hostPort
			cfg.OllamaHost, cfg.OpenAIBaseURL, cfg.OpenAIAPIKey = withCreds, withCreds+"/v1", "sk-test"

			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			o := newOps()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			model, err := startModel(ctx, cfg, o, log)
			require.NoError(t, err)

			var shown []string
			_, err = model.Describe(ctx, vision.Image{Data: tinyJPEG(t), MediaType: "image/jpeg"})
			require.Error(t, err)
			shown = append(shown, err.Error())

			srv := httptest.NewServer(o.handler(nil))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/readyz")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
			require.Contains(t, string(body), "regscribe:xxxxx@"+hostPort, "/readyz names the server, without the password")
			require.Contains(t, logs.String(), "regscribe:xxxxx@"+hostPort, "the start-up log names the server, without the password")
			shown = append(shown, logs.String(), string(body))
			if ol, ok := model.(*vision.Ollama); ok && !tc.up {
				err := ol.Pull(ctx, io.Discard)
				require.Error(t, err)
				shown = append(shown, err.Error())
			}

			for _, s := range shown {
				require.NotContains(t, s, password)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(binary, "help")
		cmd.Env = append(os.Environ(), "OLLAMA_HOST=http://regscribe:"+password+"@127.0.0.1:1", "OPENAI_BASE_URL=http://regscribe:"+password+"@127.0.0.1:1/v1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err)
		require.Contains(t, string(out), "OLLAMA_HOST")
		require.NotContains(t, string(out), password)
	})
	t.Run("configuration error", func(t *testing.T) {
		t.Parallel()
		_, err := config.OllamaURL("http://regscribe:" + password + "@")
		require.Error(t, err)
		require.NotContains(t, err.Error(), password)
		require.Contains(t, err.Error(), "OLLAMA_HOST")
	})
}

func tinyJPEG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil))
	return b.Bytes()
}
