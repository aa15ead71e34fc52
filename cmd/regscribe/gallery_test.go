package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestGalleryStopsWithAnEventStreamOpen: a browser watching a reprocess
// run that is still going does not hold the gallery's shutdown until its
// deadline: the stream ends first and the HTTP server stops with no
// request left open.
func TestGalleryStopsWithAnEventStreamOpen(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	pushPhoto(t, openRepo(t, reg.Addr(), "photos/slow"), "latest", stacktest.JPEG(t, 32, 24, 81))
	ns, js := startQueue(t) // no worker: the run waits for its job
	cfg := reprocessConfig(t, ns.ClientURL(), closedNATSURL(t))
	cfg.Registries = []string{"http://" + reg.Addr()}
	cfg.WebListen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	var logs stacktest.LogBuffer
	g, err := startGallery(context.Background(), cfg, js, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)

	resp, err := http.Get(g.url + "/jobs")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	require.NotNil(t, csrf)
	req, err := http.NewRequest(http.MethodPost, g.url+"/jobs/reprocess",
		strings.NewReader(url.Values{"csrf": {string(csrf[1])}, "target": {reg.Addr() + "/photos/slow"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", g.url)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	events, err := http.Get(g.url + resp.Header.Get("Location") + "/events")
	require.NoError(t, err)
	defer events.Body.Close()
	first, err := bufio.NewReader(events.Body).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "event: state\n", first, "the stream is open")

	g.stop()
	require.NotContains(t, logs.String(), "requests still open", "the HTTP server waited for the event stream")
}
