package web_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/reprocess"
)

// TestReprocessOneRunPerRepository: a second reprocess of a repository
// started on the jobs page (under another name of its registry) joins the
// running one; one that another process runs is refused, naming it; a
// run of another repository is not held up. Each photo is described once
// per run.
func TestReprocessOneRunPerRepository(t *testing.T) {
	g := startGallery(t, "")
	g.pushScene(t, "photos/a", "latest", scenes[0], 1)
	g.pushScene(t, "photos/b", "latest", scenes[1], 2)
	_, port, err := net.SplitHostPort(g.RegistryHost)
	require.NoError(t, err)
	_, page := request(t, http.MethodGet, g.URL+"/jobs", nil, nil)
	csrf := csrfField.FindStringSubmatch(page)[1]
	start := func(target string) (int, string, string) {
		resp, body := request(t, http.MethodPost, g.URL+"/jobs/reprocess", url.Values{"csrf": {csrf}, "target": {target}, "force": {"1"}},
			http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {g.URL}})
		return resp.StatusCode, resp.Header.Get("Location"), body
	}

	hold := make(chan struct{})
	g.mu.Lock()
	g.hold = hold
	g.mu.Unlock()
	calls := len(g.Model.Calls())
	code, first, _ := start(g.RegistryHost + "/photos/a")
	require.Equal(t, http.StatusSeeOther, code)
	require.Eventually(t, func() bool { return len(g.Model.Calls()) > calls }, 20*time.Second, 10*time.Millisecond, "the run's photo never reached the model")

	code, again, _ := start("localhost:" + port + "/photos/a")
	require.Equal(t, http.StatusSeeOther, code)
	require.Equal(t, first, again, "the second run joins the first")
	code, other, _ := start(g.RegistryHost + "/photos/b")
	require.Equal(t, http.StatusSeeOther, code)
	require.NotEqual(t, first, other, "another repository runs at once")

	// A run in another process (its lease) is named, not joined.
	_, release, err := reprocess.Claim(context.Background(), g.Leases, g.RegistryHost, []string{"photos/c"},
		reprocess.NewHolder("20261127T204107-9f3a11c2", "regscribe reprocess"))
	require.NoError(t, err)
	code, _, body := start(g.RegistryHost + "/photos/c")
	release()
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, body, "batch 20261127T204107-9f3a11c2, by regscribe reprocess on ")

	g.mu.Lock()
	g.hold = nil
	g.mu.Unlock()
	close(hold)
	for _, run := range []string{first, other} {
		require.Eventually(t, func() bool {
			_, page := request(t, http.MethodGet, g.URL+run, nil, nil)
			return strings.Contains(page, `id="phase">done<`)
		}, 60*time.Second, 100*time.Millisecond, "run %s never ended", run)
	}
	g.WaitIdle(t)
	perPhoto := map[string]int{}
	for _, c := range g.Model.Calls() {
		perPhoto[modeltest.Digest(c.Images[0])]++
	}
	require.Len(t, perPhoto, 2)
	for photo, n := range perPhoto {
		require.Equal(t, 2, n, "%s: described when pushed and once by its run", photo)
	}
}
