package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/web"
)

// TestReprocessRunsAreBounded: runs that do not end (no worker takes their
// jobs) are at most a few at once, the rest refused with a clear error;
// and finished runs are forgotten past the page's list even behind one
// that never ends.
func TestReprocessRunsAreBounded(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	for i := range 6 {
		s.Push(t, fmt.Sprintf("photos/wait-%d", i), "latest", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 32, 24, uint64(i))})
	}
	srv, err := web.New(web.Options{Catalog: emptyCatalog{}, JetStream: s.JS, Registry: s.Client, Registries: []string{s.RegistryHost},
		Leases: s.Leases, Model: "ollama/" + stacktest.Model, ThumbDir: t.TempDir()})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(srv.Close) // after ts.Close: it ends the runs and their event streams
	t.Cleanup(ts.Close)
	base := ts.URL
	_, page := request(t, http.MethodGet, base+"/jobs", nil, nil)
	csrf := csrfField.FindStringSubmatch(page)[1]
	start := func(repo string) *http.Response {
		resp, _ := request(t, http.MethodPost, base+"/jobs/reprocess", url.Values{"csrf": {csrf}, "target": {s.RegistryHost + "/" + repo}}, http.Header{"Origin": {base}})
		return resp
	}
	// waitEnd reads a run's event stream to its end.
	waitEnd := func(location string) {
		resp, err := http.Get(base + location + "/events")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Contains(t, string(b), "event: end")
	}
	runsListed := func() int {
		_, page := request(t, http.MethodGet, base+"/jobs", nil, nil)
		return strings.Count(page, `<li><a href="/jobs/runs/`)
	}

	// One run that never ends, then many that end at once (the repository
	// does not exist): the list keeps the never-ending one and the newest.
	resp := start("photos/wait-0")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	waiting := resp.Header.Get("Location")
	for i := range 30 {
		resp := start(fmt.Sprintf("photos/missing-%d", i))
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		waitEnd(resp.Header.Get("Location"))
	}
	require.Equal(t, 21, runsListed(), "20 finished runs and the one going")
	_, page = request(t, http.MethodGet, base+"/jobs", nil, nil)
	require.Contains(t, page, `href="`+waiting+`"`)

	// Runs at once: three more are taken, then one is refused.
	for i := 1; i <= 3; i++ {
		require.Equal(t, http.StatusSeeOther, start(fmt.Sprintf("photos/wait-%d", i)).StatusCode)
	}
	resp, page = request(t, http.MethodPost, base+"/jobs/reprocess", url.Values{"csrf": {csrf}, "target": {s.RegistryHost + "/photos/wait-5"}}, http.Header{"Origin": {base}})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Contains(t, page, "Too many reprocess runs at once")
	require.LessOrEqual(t, runsListed(), 24)
}
