package web_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// thumbRef matches the grid thumbnails of a page.
var thumbRef = regexp.MustCompile(`/thumbs/s/[^"]+`)

// TestOneRegistryUnderTwoNames: photos pushed to the registry (configured
// as 127.0.0.1:PORT) and reprocessed from the jobs page as
// localhost:PORT/… are one registry: the index, search, the gallery's
// pages under every loopback name and the jobs page show one entry each,
// under the configured name, pointing at the manifests the tags name now.
func TestOneRegistryUnderTwoNames(t *testing.T) {
	g := startGallery(t, "")
	g.pushScene(t, "photos/landscapes", "lake", scenes[0], 1)
	g.pushScene(t, "photos/landscapes", "beach", scenes[2], 2)
	_, port, err := net.SplitHostPort(g.RegistryHost)
	require.NoError(t, err)
	local := "localhost:" + port

	// Reprocess every photo again, naming the registry as the README does.
	_, page := request(t, http.MethodGet, g.URL+"/jobs", nil, nil)
	m := csrfField.FindStringSubmatch(page)
	require.NotNil(t, m)
	same := http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {g.URL}}
	resp, _ := request(t, http.MethodPost, g.URL+"/jobs/reprocess",
		url.Values{"csrf": {m[1]}, "target": {local + "/photos/landscapes"}, "force": {"1"}}, same)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	run := resp.Header.Get("Location")
	require.Eventually(t, func() bool {
		_, page := request(t, http.MethodGet, g.URL+run, nil, nil)
		return strings.Contains(page, `id="phase">done<`)
	}, 60*time.Second, 100*time.Millisecond, "the reprocess never ended")
	require.Len(t, g.Model.Calls(), 4, "two pushes, two photos described again")
	require.NoError(t, g.Catalog.Wait(context.Background(), g.JS))

	repos, err := g.Catalog.Repositories(context.Background())
	require.NoError(t, err)
	require.Len(t, repos, 1, "one registry, one repository")
	require.Equal(t, g.RegistryHost, repos[0].Registry, "the configured name")
	require.Equal(t, 2, repos[0].Photos)

	for _, sc := range []struct{ q, tag string }{{"lake", "lake"}, {"surfer", "beach"}} {
		hits := g.searchAPI(t, sc.q).Results
		require.Len(t, hits, 1, "search %q", sc.q)
		require.Equal(t, g.RegistryHost, hits[0].Registry)
		now, _ := g.Manifest(t, "photos/landscapes", sc.tag)
		require.Equal(t, now.Digest.String(), hits[0].Digest, "the manifest tag %s names", sc.tag)
	}

	for _, name := range []string{g.RegistryHost, local, "[::1]:" + port, strings.ToUpper("LOCALHOST:" + port)} {
		resp, page := request(t, http.MethodGet, g.URL+"/r/"+name+"/photos/landscapes", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, name)
		seen := map[string]bool{}
		for _, ref := range thumbRef.FindAllString(page, -1) {
			seen[ref] = true
		}
		require.Len(t, seen, 2, "%s: each photo once", name)
		for ref := range seen {
			require.Contains(t, ref, "/thumbs/s/"+g.RegistryHost+"/", "%s: thumbnails by the configured name", name)
		}
	}

	_, home := request(t, http.MethodGet, g.URL+"/", nil, nil)
	require.NotContains(t, home, local, "the front page lists the registry once, by its configured name")
	require.Equal(t, 1, strings.Count(home, `href="/r/`+g.RegistryHost+`/photos/landscapes"`), "one repository on the front page")
	_, jobs := request(t, http.MethodGet, g.URL+"/jobs", nil, nil)
	require.NotContains(t, jobs, local, "the run and the repositories by the configured name")
}
